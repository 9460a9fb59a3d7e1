"""A run directory's own files: ``config.json`` and the resume checkpoint, and the checks made
before anything is written into it."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from randstruct.store.errors import RunError
from randstruct.store.results import RESULTS

SCHEMA = 1
CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def versions() -> dict:
    """Versions of the packages that shape results, recorded in every config.json."""
    from randstruct import __version__

    return {"randstruct": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "xarray": xr.__version__, "python": platform.python_version()}


def new_config(kind: str, spec: dict) -> dict:
    """The content of a new run's config.json: what was asked for, with what, when and how."""
    return {"schema": SCHEMA, "kind": kind, "spec": spec, "versions": versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": sys.argv}


def prepare_run_dir(out: Path, kind: str, spec: dict, overwrite: bool, resume: bool) -> dict | None:
    """Check an output folder before anything is written; return the checkpoint to resume from.

    A non-empty folder is refused unless ``overwrite`` (replace it) or ``resume`` (continue the
    same run: same kind and spec, not yet complete).
    """
    if overwrite and resume:
        raise RunError("choose either --overwrite or --resume, not both")
    if out.exists() and not out.is_dir():
        raise RunError(f"output path {out} exists and is not a directory")
    exists = out.is_dir() and any(out.iterdir())
    if resume:
        if not exists:
            raise RunError(f"nothing to resume in {out} (no such run)")
        old = read_config(out)
        if old.get("kind") != kind or old.get("spec") != json.loads(json.dumps(spec)):
            raise RunError(f"cannot resume {out}: its config.json differs from the requested run")
        if is_complete(out):
            raise RunError(f"{out} is already complete; use --overwrite to train it again")
        return load_checkpoint(out)
    if exists and not overwrite:
        raise RunError(f"output folder {out} already exists; pass --overwrite to replace it or --resume to continue it")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
        raise RunError(f"cannot write to {out}: {parent} is not a writable directory")
    return None


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG})")
    return json.loads(path.read_text())


def is_complete(run_dir: str | Path) -> bool:
    return (Path(run_dir) / RESULTS).is_dir()


def save_checkpoint(run_dir: str | Path, state: dict) -> None:
    path = Path(run_dir) / CHECKPOINT
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


