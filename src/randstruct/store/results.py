"""``results.zarr``: the labelled arrays of a run (an xarray Dataset), written atomically, with a
checksum per array that every load verifies; ``additions.zarr``: what analyses add to it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr

from randstruct.errors import named_line
from randstruct.store.errors import DamagedRunError, RunError

RESULTS = "results.zarr"
ADDITIONS = "additions.zarr"  # variables added to a completed run (analysis), see add_results
CHECKSUMS = "checksums"  # store attribute: {variable: crc32} written with the arrays

def checksum(values: np.ndarray) -> str:
    """crc32 of an array's dtype, shape and bytes: a deleted chunk (read back as fill values) or a
    flipped byte that still decompresses shows as a mismatch."""
    values = np.ascontiguousarray(values)
    crc = zlib.crc32(f"{values.dtype.str}{values.shape}".encode())
    return f"crc32:{zlib.crc32(values.reshape(-1).view(np.uint8), crc):08x}"


def _write_store(final: Path, ds: xr.Dataset) -> None:
    """Write ``ds`` as the zarr store ``final``, replacing it atomically.

    The new store is written beside it and swapped in by two renames; between them the old one
    waits under ``<name>.old``, which :func:`_recover` puts back if a crash hit exactly there.
    So a reader always finds the old or the new version whole, never a mix.
    """
    tmp, old = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")
    if tmp.exists():
        shutil.rmtree(tmp)
    _recover(final)
    ds = ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != CHECKSUMS}
    ds.attrs[CHECKSUMS] = json.dumps({name: checksum(var.values) for name, var in ds.variables.items()},
                                     sort_keys=True)
    encoding = {name: {"chunks": (1,) + var.shape[1:]} for name, var in ds.data_vars.items()
                if var.ndim >= 3}
    with warnings.catch_warnings(), _interrupts_deferred():
        warnings.simplefilter("ignore", category=UserWarning)  # zarr v3 consolidated-metadata note
        # every chunk written, also one equal to the fill value: zarr would otherwise drop it and
        # read back +0.0 where -0.0 was written, which the checksum rightly calls a change
        ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=True, write_empty_chunks=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


@contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the staged copy is written, then raise KeyboardInterrupt
    (before the swap: the old version stays). Interrupted mid-write, zarr's background event
    loop dies with pending tasks and prints their tracebacks at exit; the copy is discarded anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


def _recover(final: Path) -> None:
    """Put back the previous version of a store whose swap was cut between its two renames."""
    old = final.with_name(final.name + ".old")
    if old.is_dir():
        if final.exists():
            shutil.rmtree(old)  # the swap completed; only the clean-up was cut
        else:
            os.replace(old, final)


def write_results(run_dir: str | Path, ds: xr.Dataset) -> None:
    """Write ``results.zarr`` atomically (a crash leaves the old results or the new, never a mix)."""
    _write_store(Path(run_dir) / RESULTS, ds)


def add_results(run_dir: str | Path, ds: xr.Dataset) -> None:
    """Add or replace variables of a completed run (e.g. analysis results).

    They go to ``additions.zarr`` beside ``results.zarr``, rewritten whole and swapped in atomically
    on every call, so an interrupted update never touches the training arrays and never leaves a
    half-written store; it is small (no weights), so rewriting it costs little. Dimensions of the
    new variables (ranks, shuffles) may differ from those stored before: stale variables are
    dropped. :func:`open_results` shows both stores as one Dataset.
    """
    run_dir = Path(run_dir)
    _recover(run_dir / RESULTS)
    if not (run_dir / RESULTS).is_dir():
        raise no_results(run_dir)
    path = run_dir / ADDITIONS
    _recover(path)
    if path.is_dir():
        ds = _combine(_open_store(path), ds)
    _write_store(path, ds)


def no_results(run_dir: Path) -> RunError:
    """Why a run has no results yet, and what to do: wait for a training that is still going (its
    lock is held by a live process), or resume one that was interrupted."""
    from randstruct.store.lock import _describe, _is_stale, lock_owner

    owner = lock_owner(run_dir)
    if owner is not None and not owner.get("unreadable") and not _is_stale(owner):
        return RunError(f"{run_dir} has no results yet: it is being written by {_describe(owner)}; wait for it "
                        f"to finish")
    if (run_dir / "checkpoint.pt").is_file() or (run_dir / "shards").is_dir():
        return RunError(f"{run_dir} has no results yet: its training was interrupted; continue it with the same "
                        f"command plus --resume")
    return RunError(f"{run_dir} has no results yet: its training stopped before the first checkpoint; run the "
                    f"same command plus --resume to start it over")


def _combine(base: xr.Dataset, new: xr.Dataset) -> xr.Dataset:
    """``base`` updated with ``new``: its variables of the same name, or on a dimension whose size
    changed, are replaced."""
    stale = [name for name, var in base.variables.items()
             if name in new.variables or any(d in new.dims and new.sizes[d] != base.sizes[d] for d in var.dims)]
    kept = base.drop_vars(stale)
    for var in kept.variables.values():
        var.encoding = {}
    return xr.merge([kept, new], combine_attrs="override").assign_attrs({**base.attrs, **new.attrs})


def _open_store(path: Path) -> xr.Dataset:
    """Load one zarr store, every array checked against the checksum written with it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # chunks=None: read by zarr, not through dask. Inside a Dask task dask would send the reads to the
            # cluster (a worker client) and wait there, which can deadlock a shard task (issue 24)
            ds = xr.open_zarr(path, consolidated=True, chunks=None)
        except Exception as err:  # zarr raises many types for a damaged store
            raise DamagedRunError(f"{path} cannot be opened ({named_line(err)}); {_remedy(path)}") from None
        sums = json.loads(ds.attrs.get(CHECKSUMS, "{}"))  # stores written before checksums: unchecked
        for name, var in ds.variables.items():
            try:
                var.load()
            except Exception as err:
                raise DamagedRunError(f"{path}: array {name!r} cannot be read ({named_line(err)}); "
                                      f"{_remedy(path)}") from None
            if name in sums and checksum(var.values) != sums[name]:
                raise DamagedRunError(f"{path}: array {name!r} does not match the checksum written with it "
                                      f"(a missing or damaged chunk); {_remedy(path)}")
    return ds


def _remedy(path: Path) -> str:
    if path.name.startswith(ADDITIONS):
        return f"delete {path} and run 'randstruct analyze' on the run again"
    return "train the run again (the same train command with --overwrite)"


def _current(final: Path) -> Path | None:
    """The whole version of a store a reader should open: ``final``, or the previous version when
    a writer is between its two renames (or was killed there). Readers never repair: only the
    writer, holding the run's lock, does."""
    old = final.with_name(final.name + ".old")
    return final if final.is_dir() else old if old.is_dir() else None


def open_results(run_dir: str | Path) -> xr.Dataset:
    """The run's results (training and additions) as one Dataset, loaded and verified."""
    run_dir = Path(run_dir)
    path = _current(run_dir / RESULTS)
    if path is None:
        raise no_results(run_dir)
    ds = _open_store(path)
    extra = _current(run_dir / ADDITIONS)
    if extra is not None:
        ds = _combine(ds, _open_store(extra))
    ds.attrs.pop(CHECKSUMS, None)
    return ds
