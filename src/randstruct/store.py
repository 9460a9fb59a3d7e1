"""Run directories: ``config.json`` + ``results.zarr`` (an xarray Dataset) + a resume checkpoint.

Layout of a run directory::

    config.json      every parameter and seed, package versions (enough to rerun)
    results.zarr/    labelled arrays, written once training completed
    checkpoint.pt    trainer state while a run is in progress (removed on completion)

Dimensions of the Dataset: ``net`` (ensemble member, with coordinates ``g`` and ``seed``),
``epoch``, ``rec`` (recorded epochs; its coordinate holds the epoch numbers), ``sv`` (singular
value index, 1-based), ``unit`` (postsynaptic unit, rows of W), ``unit_pre`` (presynaptic unit,
columns of W), ``channel_in`` and ``channel_out``. W needs two unit axes, hence ``unit_pre``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import xarray as xr

SCHEMA = 1
CONFIG = "config.json"
RESULTS = "results.zarr"
CHECKPOINT = "checkpoint.pt"

_W = ("net", "unit", "unit_pre")
_DESCRIPTIONS = {
    "loss": ("net", "epoch"), "grad_norm": ("net", "epoch"), "sv_dw": ("net", "rec", "sv"),
    "diverged_epoch": ("net",), "lr": ("net",),
    "w0": _W, "w": _W, "wi0": ("net", "channel_in", "unit"), "wi": ("net", "channel_in", "unit"),
    "wo0": ("net", "unit", "channel_out"), "wo": ("net", "unit", "channel_out"),
    "b": ("net", "unit"), "x0": ("net", "unit"), "weights": ("net", "rec", "unit", "unit_pre"),
    "eig_w_rec": ("net", "rec", "eig_top"),
}
ATTRS = {
    "loss": "masked MSE (factor 1/2) of the training batch, before the update of that epoch",
    "grad_norm": "sqrt of the summed squared gradients of all trained parameters, before the update",
    "sv_dw": "singular values of W - W0 at the recorded epochs (weights before that epoch's update)",
    "diverged_epoch": "first epoch with non-finite loss or weights (-1: never); frozen from then on",
    "lr": "learning rate of each network",
    "w0": "initial recurrent connectivity W0", "w": "final recurrent connectivity W = W0 + dW",
    "wi0": "initial input weights", "wi": "final input weights",
    "wo0": "initial output weights", "wo": "final output weights",
    "b": "final recurrent bias", "x0": "final initial state",
    "weights": "recurrent connectivity at the recorded epochs",
    "eig_w_rec": "leading eigenvalues of W at the recorded epochs, sorted by real part (then imaginary), descending",
}


class RunError(ValueError):
    """A run directory that cannot be used as asked (exists, incomplete, mismatched)."""


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def versions() -> dict:
    """Versions of the packages that shape results, recorded in every config.json."""
    from . import __version__

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


def build_dataset(arrays: dict[str, np.ndarray], g: np.ndarray, seed: np.ndarray,
                  rec_epochs: np.ndarray, attrs: dict) -> xr.Dataset:
    """Label the arrays of a finished run (names as in ``_DESCRIPTIONS``)."""
    data_vars = {}
    for name, value in arrays.items():
        if value is None:
            continue
        data_vars[name] = xr.Variable(_DESCRIPTIONS[name], np.asarray(value),
                                      attrs={"description": ATTRS[name]})
    ds = xr.Dataset(data_vars, attrs=attrs)
    n_net = len(g)
    coords = {"net": np.arange(n_net), "g": ("net", np.asarray(g, float)),
              "seed": ("net", np.asarray(seed, np.int64)), "rec": np.asarray(rec_epochs)}
    for dim in ("epoch", "sv", "eig_top", "unit", "unit_pre", "channel_in", "channel_out"):
        if dim in ds.dims:
            coords[dim] = np.arange(ds.sizes[dim]) + (1 if dim in ("sv", "eig_top") else 0)
    return ds.assign_coords({k: v for k, v in coords.items() if k in ("g", "seed") or k in ds.dims})


def write_results(run_dir: str | Path, ds: xr.Dataset) -> None:
    """Write ``results.zarr`` atomically (a crash leaves no half-written results)."""
    final = Path(run_dir) / RESULTS
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    encoding = {name: {"chunks": (1,) + var.shape[1:]} for name, var in ds.data_vars.items()
                if var.ndim >= 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # zarr v3 consolidated-metadata note
        ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def add_results(run_dir: str | Path, ds: xr.Dataset) -> None:
    """Add or replace variables of a completed run (e.g. analysis results) in ``results.zarr``."""
    path = Path(run_dir) / RESULTS
    if not path.is_dir():
        raise RunError(f"{run_dir} has no results yet (training incomplete: resume it with --resume)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        # appending rewrites the group's attributes: keep the run's own
        existing = xr.open_zarr(path, consolidated=True).attrs
        ds.assign_attrs({**existing, **ds.attrs}).to_zarr(path, mode="a", consolidated=True)


def open_results(run_dir: str | Path) -> xr.Dataset:
    path = Path(run_dir) / RESULTS
    if not path.is_dir():
        raise RunError(f"{run_dir} has no results yet (training incomplete: resume it with --resume)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return xr.open_zarr(path, consolidated=True).load()
