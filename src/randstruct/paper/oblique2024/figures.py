"""The 2024 paper's figures from the sweep's runs and their table (results.table, computed once): Fig 3 (aligned or oblique:
rho, ||w_out||, ||x||, D_x,90, D_fit,90), Fig 4 (dissimilarity of solutions across seeds),
Fig 5 (lasting responses to perturbations) and Fig 6 (noise along the output). Small initial
readouts (aligned) dark, large ones (oblique) light; circles g = 0.7, triangles g = 1.5."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from randstruct.analysis.activity import grace_steps
from randstruct.paper.figures.common import letter
from randstruct.paper.oblique2024.experiments import REGIME, TASKS
from randstruct.runs import Run

COLOR = {"small": "#c2410c", "large": "#fbbf24"}
REGIME_LABEL = {"small": "small w_out (aligned)", "large": "large w_out (oblique)"}
MARKER = {0.7: "o", 1.5: "^"}
GRACE_TAU = 10.0  # the analyses' grace time (reproduce.GRACE)


def _strip(ax, t, var: str, log: bool = False, ylabel: str = "") -> None:
    """One point per network (or pair) per task, the two readouts side by side, means as bars."""
    tasks = t.task.values
    for r, readout in enumerate(("small", "large")):
        for g in t.g.values:
            v = t[var].sel(readout=readout, g=g).values  # (task, seed or pair)
            for i in range(len(tasks)):
                x = i + (r - 0.5) * 0.34 + (0.06 if g > 1 else -0.06)
                ax.plot(np.full(v.shape[1], x), v[i], MARKER[float(g)], color=COLOR[readout], ms=3.5,
                        mec="0.3", mew=0.3, alpha=0.9, ls="none")
        mean = np.nanmean(t[var].sel(readout=readout).values.reshape(len(tasks), -1), axis=1)
        ax.hlines(mean, np.arange(len(tasks)) + (r - 0.5) * 0.34 - 0.14, np.arange(len(tasks)) + (r - 0.5) * 0.34 + 0.14,
                  color=COLOR[readout], lw=2)
    ax.set_xticks(range(len(tasks)), t.label.values, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")


def _ratio(ax, t, num: str, den: str, ylabel: str) -> None:
    """A strip of ``num / den`` per network on a log scale, 1 dashed."""
    _strip(ax, t.assign(ratio=t[num] / t[den]), "ratio", log=True, ylabel=ylabel)
    ax.axhline(1, color="0.6", ls="--", lw=1)


def _legend(ax) -> None:
    handles = [plt.Line2D([], [], color=COLOR[r], lw=4, label=REGIME_LABEL[r]) for r in ("small", "large")]
    handles += [plt.Line2D([], [], marker=MARKER[g], color="0.4", ls="none", label=f"g = {g}") for g in MARKER]
    ax.legend(handles=handles, loc="best", frameon=False)


def _curves(ax_var, ax_fit, t) -> None:
    """Cumulative variance and R^2 against the number of leading PCs, cycling, first seed, g = 0.7."""
    for readout in ("small", "large"):
        sel = t.sel(task="cycling", g=0.7, readout=readout, seed=0)
        k = np.arange(0, 13)
        for ax, var, dim in ((ax_var, "var_explained", "dim_x90"), (ax_fit, "fit_r2", "dim_fit90")):
            y = np.r_[0, sel[var].values[:12]]
            ax.plot(k, y, ".-", color=COLOR[readout], ms=4)
            d = sel[dim].item()
            if np.isfinite(d) and d > 0:
                ax.vlines(d, 0, 0.9, color=COLOR[readout], ls=":")
            ax.axhline(0.9, color="0.6", ls="--", lw=1)
            ax.set_ylim(0, 1.05)
    ax_var.set(ylabel="var(x) explained", title="cycling, one network per readout")
    ax_fit.set(ylabel="R² of the output", xlabel="number of PCs")


def fig3(runs: dict[str, Run], t: xr.Dataset):
    fig = plt.figure(figsize=(9, 7.5), layout="constrained")
    grid = fig.add_gridspec(6, 2)
    a = fig.add_subplot(grid[0:2, 0])
    b = fig.add_subplot(grid[2:4, 0])
    c = fig.add_subplot(grid[4:6, 0])
    d = fig.add_subplot(grid[0, 1])
    e = fig.add_subplot(grid[1, 1])
    f = fig.add_subplot(grid[2:4, 1])
    h = fig.add_subplot(grid[4:6, 1])
    _strip(a, t, "rho", log=True, ylabel="corr ρ(w_out, x)")
    _legend(a)
    _strip(b, t, "norm_wo", log=True, ylabel="‖w_out‖")
    n = runs[next(iter(runs))].spec.n
    for r, y in (("large", 1.0), ("small", 1 / np.sqrt(n))):
        b.axhline(y, color=COLOR[r], ls="--", lw=1)
    _strip(c, t, "norm_x", log=True, ylabel="‖x‖")
    _curves(d, e, t)
    _strip(f, t, "dim_x90", ylabel="D_x,90")
    _strip(h, t, "dim_fit90", ylabel="D_fit,90")
    letter([a, b, c, d, e, f, h])
    caption = (f"Aligned and oblique dynamics (after Schuessler et al. 2024, Fig 3; N = {n}, "
               f"{t.sizes['seed']} seeds per scenario, noiseless evaluation trials after a grace time of "
               "10 τ, the activity x is the state the output reads). "
               "(a) generalized correlation ρ between the readout and the activity: small initial readouts "
               "(dark) end aligned, large ones (light) oblique. (b) norm of a readout vector; dashed: the "
               "initial norms 1 and 1/√N. (c) norm of the state, root mean square over samples (the paper's √N × RMS per unit). (d, e) cumulative variance of x and R² of "
               "the output fitted from the leading PCs, one cycling network per readout; dotted: D_x,90 "
               "and D_fit,90. (f) D_x,90, principal components for 90 % of the variance. (g) D_fit,90, "
               "leading components needed to reproduce the output with R² ≥ 0.9. Circles g = 0.7, "
               "triangles g = 1.5; bars: means.")
    return fig, caption


def _trajectories(axes, runs: dict[str, Run], readout: str, g: float = 1.5) -> None:
    """Cycling networks at ``g``, one per seed: the two directions' noiseless states after the
    grace time, each network in the plane of its own two leading PCs."""
    run = next((r for r in runs.values() if r.spec.task == TASKS["cycling"].task and r.spec.readout == readout
                and g in r.spec.g), None)
    if run is None:
        for ax in axes:
            ax.set_axis_off()
        return
    task = run.task()
    batch = task.test_batch(2)
    members = np.flatnonzero(np.isclose(run.data.g.values, g))[:len(axes)]
    x = run.ensemble().select(members).simulate(batch.inputs, task.dt, return_states=True)[1]
    x = x.double().numpy()[:, :, grace_steps(task, GRACE_TAU):]
    for ax, states, seed in zip(axes, x, run.data.seed.values[members]):
        flat = states.reshape(-1, states.shape[-1])
        centre = flat.mean(0)
        pcs = np.linalg.svd(flat - centre, full_matrices=False)[2][:2]
        for trial, color in zip(states, ("#5b2a86", "#4d9221")):
            p = (trial - centre) @ pcs.T
            ax.plot(p[:, 0], p[:, 1], color=color, lw=1)
        ax.set(xticks=[], yticks=[], title=f"{REGIME[readout]}, seed {int(seed)}")
        ax.set_aspect("equal", adjustable="datalim")
    axes[0].set_ylabel("PC 2")
    axes[0].set_xlabel("PC 1")


def fig4(runs: dict[str, Run], t: xr.Dataset):
    fig = plt.figure(figsize=(11, 5), layout="constrained")
    grid = fig.add_gridspec(2, 5)
    aligned = [fig.add_subplot(grid[0, i]) for i in range(3)]
    oblique = [fig.add_subplot(grid[1, i]) for i in range(3)]
    dis, loss = fig.add_subplot(grid[0, 3:]), fig.add_subplot(grid[1, 3:])
    _trajectories(aligned, runs, "small")
    _trajectories(oblique, runs, "large")
    _strip(dis, t, "dissimilarity", ylabel="dissimilarity (Procrustes, rad)")
    _legend(dis)
    _strip(loss, t, "loss", log=True, ylabel="final loss / zero output")
    letter(aligned + oblique + [dis, loss])
    caption = ("Solutions across seeds (after Schuessler et al. 2024, Fig 4). (a-c) aligned and (d-f) oblique "
               "cycling networks (g = 1.5, three seeds): the noiseless states of the two directions (purple, "
               "green) after the grace time, each network in the plane of its own two leading principal "
               "components; aligned solutions look alike, oblique ones differ. (g) dissimilarity of the "
               "noiseless activity of two networks of the same task and scenario trained from different "
               "seeds: the Procrustes (shape) angle arccos(‖XᵀY‖_* / (‖X‖ ‖Y‖)) of the sample-centred "
               "states, the authors' ridge CCA at α = 1, one point per pair; oblique solutions differ "
               "more. (h) final training loss (mean of the last 20 steps) relative to the loss of a zero "
               "output, one point per network: how well each network compared has learned its task.")
    return fig, caption


def fig5(runs: dict[str, Run], t: xr.Dataset):
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
    _strip(axes[0], t, "pulse_readout", log=True, ylabel="output change per unit pulse")
    axes[0].set_title("pulse along w_out")
    _legend(axes[0])
    _strip(axes[1], t, "pulse_random", log=True, ylabel="output change per unit pulse")
    axes[1].set_title("pulse along a random direction")
    _ratio(axes[2], t, "pulse_readout", "pulse_random", "along w_out / random")
    letter(axes)
    caption = ("Lasting responses to perturbations (after Schuessler et al. 2024, Fig 5). A state pulse of "
               "norm √N at the end of the grace time, noiseless; the RMS change of the output counted from "
               "5 τ after the pulse to the end of the trial (the authors score the loss from 5 τ after "
               "the perturbation), per unit pulse. (a) along the readout (mean over output vectors), "
               "(b) along random directions (mean of 10), (c) their ratio: aligned networks keep a "
               "perturbation along the output, oblique ones suppress it.")
    return fig, caption


def fig6(runs: dict[str, Run], t: xr.Dataset):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    _ratio(axes[0], t, "noise_readout", "noise_random", "variance along w_out / random")
    _legend(axes[0])
    _ratio(axes[1], t, "noise_pc", "noise_random", "variance along leading PCs / random")
    letter(axes)
    caption = ("Noise along the output (after Schuessler et al. 2024, Fig 6). Trial-to-trial fluctuations "
               "of the state driven by the networks' own noise (4 conditions x 16 repeats, the training "
               "noise, after the grace time). (a) variance along the readout vectors relative to a random "
               "direction: oblique networks suppress the noise the output would read. (b) the same along "
               "the two leading components of the condition-averaged activity.")
    return fig, caption
