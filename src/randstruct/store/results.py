"""``results.zarr``: the labelled arrays of a run (an xarray Dataset), written atomically."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from randstruct.store.errors import RunError

RESULTS = "results.zarr"

_W = ("net", "unit", "unit_pre")
_DESCRIPTIONS = {
    "loss": ("net", "epoch"), "grad_norm": ("net", "epoch"), "sv_dw": ("net", "rec", "sv"),
    "diverged_epoch": ("net",), "lr": ("net",),
    "w0": _W, "w": _W, "wi0": ("net", "channel_in", "unit"), "wi": ("net", "channel_in", "unit"),
    "wo0": ("net", "unit", "channel_out"), "wo": ("net", "unit", "channel_out"),
    "b": ("net", "unit"), "x0": ("net", "unit"), "weights": ("net", "rec", "unit", "unit_pre"),
    "eig_w_rec": ("net", "rec", "eig_top"), "accuracy": ("net", "epoch"),
}
ATTRS = {
    "loss": "masked MSE (factor 1/2), or masked cross-entropy where spec.train.loss says so, of the "
            "training batch, before the update of that epoch",
    "accuracy": "decision accuracy on the training batch (argmax of the outputs summed over each trial's "
                "decision steps vs the label), before the update of that epoch; tasks with labels only",
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
