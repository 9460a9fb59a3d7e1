"""A run directory's own files: ``config.json`` and the resume checkpoint, and the checks made
before anything is written into it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from randstruct.store.errors import DamagedRunError, RunError
from randstruct.store.lock import LOCK
from randstruct.version import __version__
from randstruct.store.results import ADDITIONS, RESULTS, _current

SCHEMA = 1
CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def versions() -> dict:
    """Versions of the packages that shape results, recorded in every config.json."""
    return {"randstruct": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "xarray": xr.__version__, "python": platform.python_version()}


def new_config(kind: str, spec: dict) -> dict:
    """The content of a new run's config.json: what was asked for, with what, when and how."""
    return {"schema": SCHEMA, "kind": kind, "spec": spec, "versions": versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": sys.argv}


KINDS = ("rnn", "sentiment", "rnn-shard")  # what a config.json's "kind" may be (rnn-shard: distributed/)
# every name a run writes into its directory (a run's own, what --overwrite may delete)
RUN_ENTRIES = (CONFIG, RESULTS, ADDITIONS, CHECKPOINT, "vocab.txt", "shards")  # shards/: a run trained on a cluster
_OURS_PREFIXES = tuple(name + "." for name in (CONFIG, RESULTS, ADDITIONS, CHECKPOINT)) + (LOCK,)


def _ours(name: str) -> bool:
    """A name a run writes: its files, their staged copies (``*.tmp``...) and its lock."""
    return name in RUN_ENTRIES or name.startswith(_OURS_PREFIXES)


def _contents(out: Path) -> list[str]:
    """The entries of ``out`` other than its lock (the lock is taken before this check)."""
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(LOCK))


def check_overwritable(out: Path) -> None:
    """Refuse to delete ``out`` unless it is a randstruct run holding nothing but a run's files,
    and neither the current directory nor one of its parents."""
    if str(out) in ("", "."):
        raise RunError("refusing to overwrite the current directory; name the run directory in --out")
    here, target = Path.cwd().resolve(), out.resolve()
    if target == here or target in here.parents:
        raise RunError(f"refusing to overwrite {out}: it is the current directory or one of its parents")
    read_config(out)  # a run says so in its config.json
    foreign = [name for name in _contents(out) if not _ours(name)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise RunError(f"refusing to overwrite {out}: it holds files a run does not write ({shown}); "
                       f"move them or choose another output folder")


def clear_run_dir(out: Path) -> None:
    """Delete a run's own entries (checked by :func:`check_overwritable`), keeping its lock."""
    for p in out.iterdir():
        if p.name.startswith(LOCK) or not _ours(p.name):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def prepare_run_dir(out: Path, kind: str, spec: dict, overwrite: bool, resume: bool,
                    where: tuple[str, ...] = ()) -> dict | None:
    """Check an output folder before anything is written; return the checkpoint to resume from.

    A non-empty folder is refused unless ``overwrite`` (replace it: only a run's own folder) or
    ``resume`` (continue the same run: same kind and spec up to the keys ``where``, which say where
    it is computed, not yet complete; or a complete one with more epochs, from its final state). Call it while
    holding the folder's lock (:func:`~randstruct.store.lock.run_lock`), which it ignores.
    """
    if overwrite and resume:
        raise RunError("choose either --overwrite or --resume, not both")
    if out.exists() and not out.is_dir():
        raise RunError(f"output path {out} exists and is not a directory")
    exists = bool(_contents(out))
    if resume:
        if not exists:
            raise RunError(f"nothing to resume in {out} (no such run)")
        old, new = read_config(out), json.loads(json.dumps(spec))
        same = old.get("kind") == kind and _without(old.get("spec"), where) == _without(new, where)
        if not same and not (old.get("kind") == kind and _longer(old.get("spec"), new, where)):
            raise RunError(f"cannot resume {out}: its config.json differs from the requested run")
        state = load_checkpoint(out)
        if is_complete(out):  # extended to more epochs from its final state, or already done
            epochs = new["train"]["epochs"] if isinstance(new.get("train"), dict) else None
            if state is None and not same:
                raise RunError(f"{out} cannot be extended: it keeps no final trainer state (trained in shards or by an "
                               f"earlier randstruct); use --overwrite to train it again for {epochs} epochs")
            if state is None or epochs is None or state.get("epoch", epochs) >= epochs:
                raise RunError(f"{out} is already complete; pass a larger --epochs with --resume to train it further, "
                               f"or --overwrite to train it again")
        return state
    if exists and not overwrite:
        raise RunError(f"output folder {out} already exists; pass --overwrite to replace it or --resume to continue it")
    if exists:
        check_overwritable(out)
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
        raise RunError(f"cannot write to {out}: {parent} is not a writable directory")
    return None


def _longer(old, new, where: tuple[str, ...]) -> bool:
    """``new`` is ``old`` with more training epochs (everything else, the record grid included, the same)."""
    if not (isinstance(old, dict) and isinstance(new, dict) and isinstance(old.get("train"), dict)
            and isinstance(new.get("train"), dict)):
        return False
    a, b = _without(old, where + ("train",)), _without(new, where + ("train",))
    ta, tb = _without(old["train"], ("epochs",)), _without(new["train"], ("epochs",))
    return a == b and ta == tb and new["train"]["epochs"] > old["train"]["epochs"]


def _without(spec, keys: tuple[str, ...]):
    """``spec`` less the keys that say where a run is computed, not what (the device)."""
    return {k: v for k, v in spec.items() if k not in keys} if isinstance(spec, dict) else spec


def read_config(run_dir: str | Path, expect: Callable[[dict], None] | None = None) -> dict:
    """The run's config.json, checked: valid JSON, a known schema version, then ``expect(config)``
    (a caller's own check, e.g. of the kind, so its message comes first), a known kind, a spec."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG})")
    try:
        config = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise DamagedRunError(f"{path} is not a text file (corrupted?); restore it, or train the run again with "
                              "--overwrite") from None
    except json.JSONDecodeError as err:
        raise DamagedRunError(f"{path} is not valid JSON (corrupted or truncated? {err.msg} at line {err.lineno}); "
                              "restore it, or train the run again with --overwrite") from None
    except OSError as err:
        raise RunError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(config, dict):
        raise RunError(f"{path} is not a run's config (expected a JSON object)")
    if config.get("schema") != SCHEMA:
        raise RunError(f"{path} has schema version {config.get('schema')!r}; this randstruct reads version {SCHEMA}")
    if expect is not None:
        expect(config)
    if config.get("kind") not in KINDS:
        raise RunError(f"{path} has kind {config.get('kind')!r}; allowed: {', '.join(KINDS)}")
    if not isinstance(config.get("spec"), dict):
        raise RunError(f"{path} has no spec object")
    return config


def is_complete(run_dir: str | Path) -> bool:
    return _current(Path(run_dir) / RESULTS) is not None


def save_checkpoint(run_dir: str | Path, state: dict) -> None:
    path = Path(run_dir) / CHECKPOINT
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a truncated or overwritten file
        raise DamagedRunError(f"{path} cannot be read ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                              "delete it and run the same command with --resume (training starts again from "
                              "epoch 0), or use --overwrite") from None


