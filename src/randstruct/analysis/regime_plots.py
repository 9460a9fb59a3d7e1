"""The figure of the regime analyses of a run (docs/regimes.md), drawn by ``randstruct plot`` beside
the run's figure once ``alignment``, ``regime`` or ``similarity`` are stored: per g (mean +- sd over
seeds) rho, D_x,90 and D_fit,90, the pulse responses, ||dW||/||W0|| and the CKA of the initial and
final activity; the members' CKA and Procrustes matrices ordered by g, and their 2-D embedding
coloured by g. Panels whose analysis is missing say so."""

from __future__ import annotations

import numpy as np
import xarray as xr

from randstruct.analysis.grouping import mean_sd_by_g

PER_G = [("align_rho", "rho (readout vs activity)"), ("align_dim_x90", "D_x,90"), ("align_dim_fit90", "D_fit,90"),
         ("regime_rel_dw", "||dW|| / ||W0||"), ("regime_cka_init", "CKA initial vs final")]


def has_regimes(ds: xr.Dataset) -> bool:
    return any(name in ds for name in ("align_rho", "regime_rel_dw", "sim_cka"))


def _per_g(ax, ds, name, label) -> None:
    if name not in ds:
        ax.text(0.5, 0.5, f"no {name.split('_')[0]} analysis", ha="center", va="center", transform=ax.transAxes,
                color="0.4")
        ax.set(xticks=[], yticks=[], title=label)
        return
    gs, mean, sd, _ = mean_sd_by_g(ds.g.values, ds[name].values.astype(float))
    ax.errorbar(gs, mean, yerr=sd, marker="o", capsize=3)
    ax.set(xlabel="g", ylabel=label, title=label)


def _pulses(ax, ds) -> None:
    names = [("align_pulse_readout", "readout"), ("align_pulse_pc", "leading PCs"), ("align_pulse_random", "random")]
    if "align_pulse_readout" not in ds:
        ax.text(0.5, 0.5, "no alignment analysis", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set(xticks=[], yticks=[], title="pulse responses")
        return
    for name, label in names:
        values = ds[name].values.astype(float)
        values = values.reshape(values.shape[0], -1).mean(axis=1)
        gs, mean, sd, _ = mean_sd_by_g(ds.g.values, values)
        ax.errorbar(gs, mean, yerr=sd, marker="o", capsize=3, label=label)
    ax.set(xlabel="g", ylabel="output change", yscale="log", title="pulse responses (mean over directions)")
    ax.legend(fontsize=8)


def _matrix(ax, ds, name, title, order) -> None:
    if name not in ds:
        ax.text(0.5, 0.5, "no similarity analysis", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set(xticks=[], yticks=[], title=title)
        return
    m = ds[name].values[np.ix_(order, order)]
    im = ax.imshow(m, cmap="viridis")
    ticks = [f"{g:g}" for g in ds.g.values[order]]
    ax.set(xticks=range(len(order)), yticks=range(len(order)), title=title)
    ax.set_xticklabels(ticks, fontsize=6, rotation=90)
    ax.set_yticklabels(ticks, fontsize=6)
    ax.set_xlabel("g of the member")
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def regime_figure(ds: xr.Dataset, title: str = ""):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(13, 11), constrained_layout=True)
    flat = axes.ravel()
    for ax, (name, label) in zip(flat[:5], PER_G):
        _per_g(ax, ds, name, label)
    _pulses(flat[5], ds)
    order = np.argsort(ds.g.values, kind="stable")
    _matrix(flat[6], ds, "sim_cka", "CKA between members (ordered by g)", order)
    _matrix(flat[7], ds, "sim_procrustes", "Procrustes angle between members", order)
    ax = flat[8]
    if "sim_mds" in ds:
        xy = ds.sim_mds.values
        points = ax.scatter(xy[:, 0], xy[:, 1], c=ds.g.values, cmap="viridis")
        fig.colorbar(points, ax=ax, label="g")
        ax.set(xlabel="MDS 1", ylabel="MDS 2", title="members embedded by 1 - CKA")
    else:
        ax.text(0.5, 0.5, "no similarity analysis", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set(xticks=[], yticks=[], title="members embedded by 1 - CKA")
    if title:
        fig.suptitle(title)
    return fig


def save_regime_figure(run, path) -> None:
    import matplotlib.pyplot as plt

    fig = regime_figure(run.data, f"{run.spec.task}, N = {run.spec.n}: regimes and solutions")
    fig.savefig(path, dpi=110)
    plt.close(fig)
