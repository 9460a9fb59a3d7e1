"""Derived statistics of stored runs, shared by the figures and the claims report."""

from __future__ import annotations

import numpy as np
import xarray as xr

from randstruct.analysis.connectivity import first_below
from randstruct.analysis.grouping import by_g, mean_sd_by_g
from randstruct.runs import Run


def zhat(run: Run) -> float:
    """Target of a simple-task run."""
    return float(run.spec.task_params["target"])


def by_target(runs: dict[str, Run]) -> dict[float, Run]:
    """Simple-task runs keyed by their target zhat."""
    return {zhat(r): r for r in runs.values()}


def linear_statistics(run: Run, threshold: float = 0.05) -> dict[str, np.ndarray]:
    """Per network: convergence time tau_c, ||dW|| at the last record, mean gradient norm, shuffle loss.

    tau_c = eta * (first epoch with loss < threshold * zhat^2 / 2) (SPEC 5.4); the average gradient
    norm is the mean per-epoch gradient norm before convergence; the shuffle loss is the mean over
    shuffles divided by zhat^2 / 2 (NaN if the run was not analysed).
    """
    ds, target = run.data, zhat(run)
    l0 = target**2 / 2
    loss = ds.loss.values
    k_c = first_below(loss, np.full(len(loss), l0), threshold, np.arange(loss.shape[1])).astype(float)
    k_c[k_c < 0] = np.nan
    epochs = np.arange(ds.sizes["epoch"])
    before = epochs[None, :] < np.nan_to_num(k_c, nan=ds.sizes["epoch"])[:, None]
    grad = np.where(before, ds.grad_norm.values, np.nan)
    shuffle = ds.shuffle_loss.mean("shuffle").values / l0 if "shuffle_loss" in ds else np.full(ds.sizes["net"], np.nan)
    return {"g": ds.g.values, "tau_c": ds.lr.values * k_c, "norm_dw": np.sqrt((ds.sv_dw.isel(rec=-1) ** 2).sum("sv")).values,
            "grad": np.nanmean(grad, axis=1), "shuffle": shuffle}


def qualifying(ds: xr.Dataset) -> np.ndarray:
    """Networks that converged by both of the paper's criteria (SPEC 3.4): a convergence epoch
    and a functional rank were found (and the network did not diverge)."""
    return (ds.conv_epoch.values > 0) & (ds.functional_rank.values > 0) & (ds.diverged_epoch.values < 0)


def per_g(ds: xr.Dataset, names: tuple[str, ...], min_samples: int) -> xr.Dataset:
    """Mean and population sd over qualifying networks of each analysis variable, per g.

    A g value gets NaN unless at least ``min_samples`` networks qualify (the paper's
    ``min_num_samples_for_avg``: 5 for Fig 2, 3 for Fig S1).
    """
    ok, g = qualifying(ds), ds.g.values
    out = {}
    for name in names:
        levels, mean, sd, counts = mean_sd_by_g(g, ds[name].values, include=ok, min_count=min_samples, skipna=False)
        out[f"{name}_mean"], out[f"{name}_sd"] = ("g", mean), ("g", sd)
    levels, groups = by_g(g, ok)
    out["n_qualifying"] = ("g", np.array([int(k.sum()) for k in groups]))
    out["n_nets"] = ("g", np.array([len(k) for k in groups]))
    return xr.Dataset(out, coords={"g": levels})


def top_imaginary(ev: np.ndarray) -> np.ndarray:
    """Per row (last axis: eigenvalues), the eigenvalue with the largest imaginary part; NaN for a
    row with no finite eigenvalue (a record after the network diverged)."""
    ev = np.asarray(ev)
    imag = np.where(np.isfinite(ev), ev.imag, -np.inf)
    top = np.take_along_axis(ev, imag.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    return np.where(np.isfinite(imag).any(axis=-1), top, complex(np.nan, np.nan))
