"""Derived statistics of stored runs, shared by the figures and the claims report."""

from __future__ import annotations

import numpy as np
import xarray as xr

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
    below = ds.loss.values < threshold * l0
    k_c = np.where(below.any(axis=1), below.argmax(axis=1), -1).astype(float)
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
    ok = qualifying(ds)
    out = {}
    levels = np.unique(ds.g.values)
    counts = np.array([np.sum(ok & np.isclose(ds.g.values, g)) for g in levels])
    for name in names:
        values = ds[name].values.astype(float)
        mean, sd = [], []
        for g, n_ok in zip(levels, counts):
            sel = ok & np.isclose(ds.g.values, g)
            enough = n_ok >= min_samples
            mean.append(values[sel].mean() if enough else np.nan)
            sd.append(values[sel].std() if enough else np.nan)
        out[f"{name}_mean"] = ("g", np.array(mean))
        out[f"{name}_sd"] = ("g", np.array(sd))
    out["n_qualifying"] = ("g", counts)
    out["n_nets"] = ("g", np.array([np.sum(np.isclose(ds.g.values, g)) for g in levels]))
    return xr.Dataset(out, coords={"g": levels})
