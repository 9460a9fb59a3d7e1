"""The variables a training run stores: their dimensions and what each one is.

Dimensions: ``net`` (ensemble member, with coordinates ``g`` and ``seed``), ``epoch``, ``rec``
(recorded epochs; its coordinate holds the epoch numbers), ``sv`` (singular value index, 1-based),
``unit`` (postsynaptic unit, rows of W), ``unit_pre`` (presynaptic unit, columns of W),
``channel_in`` and ``channel_out``. W needs two unit axes, hence ``unit_pre``. Analyses add their
own variables, described by their plug-ins (docs/analyses.md).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

_W = ("net", "unit", "unit_pre")
DIMS = {
    "loss": ("net", "epoch"), "grad_norm": ("net", "epoch"), "sv_dw": ("net", "rec", "sv"),
    "diverged_epoch": ("net",), "lr": ("net",),
    "w0": _W, "w": _W, "wi0": ("net", "channel_in", "unit"), "wi": ("net", "channel_in", "unit"),
    "wo0": ("net", "unit", "channel_out"), "wo": ("net", "unit", "channel_out"),
    "b": ("net", "unit"), "x0": ("net", "unit"), "weights": ("net", "rec", "unit", "unit_pre"),
    "eig_w_rec": ("net", "rec", "eig_top"), "accuracy": ("net", "epoch"),
    "penalty": ("net", "epoch"),
}
ATTRS = {
    "loss": "masked MSE (factor 1/2), or masked cross-entropy where spec.train.loss says so, of the "
            "training batch, before the update of that epoch",
    "accuracy": "decision accuracy on the training batch (argmax of the outputs summed over each trial's "
                "decision steps vs the label), before the update of that epoch; tasks with labels only",
    "penalty": "regularization penalty (l2_w, l2_dw, l2_rates: lambda times a mean of squares) on the training "
               "batch, before the update of that epoch; not included in loss; regularized runs only",
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
    """Label the arrays of a finished run (names as in ``DIMS``)."""
    data_vars = {}
    for name, value in arrays.items():
        if value is None:
            continue
        data_vars[name] = xr.Variable(DIMS[name], np.asarray(value),
                                      attrs={"description": ATTRS[name]})
    ds = xr.Dataset(data_vars, attrs=attrs)
    n_net = len(g)
    coords = {"net": np.arange(n_net), "g": ("net", np.asarray(g, float)),
              "seed": ("net", np.asarray(seed, np.int64)), "rec": np.asarray(rec_epochs)}
    for dim in ("epoch", "sv", "eig_top", "unit", "unit_pre", "channel_in", "channel_out"):
        if dim in ds.dims:
            coords[dim] = np.arange(ds.sizes[dim]) + (1 if dim in ("sv", "eig_top") else 0)
    return ds.assign_coords({k: v for k, v in coords.items() if k in ("g", "seed") or k in ds.dims})


