"""E3, linear networks on the input-driven fixed point: Figs 3, 4 and S3, against the linear theory."""

from __future__ import annotations

import numpy as np

from randstruct import theory
from randstruct.analysis.grouping import mean_sd_by_g
from randstruct.paper.figures.common import THEORY_STYLE, band, letter, plt, select
from randstruct.paper.stats import by_target, linear_statistics
from randstruct.paper.stats import zhat as target_of
from randstruct.runs import Run

G_COLORS = {0.0: "#1f77b4", 0.6: "#d62728"}
ZHAT_COLORS = {0.5: "#2ca02c", 2.0: "#9467bd"}
X_RANGE = {0.5: 1.9, 2.0: 0.6}  # effective-time ranges of the published loss panels (SPEC 5.3)
TAU_RANGE = {0.5: 2.2, 2.0: 0.4}  # raw-time ranges of the Fig S3 singular-value panels (SPEC 5.5)

def _x_axis(run: Run) -> np.ndarray:
    """Effective learning time x = beta^2 tau = eta0 * epoch (SPEC 5.1)."""
    return run.spec.train.lr0 * np.arange(run.data.sizes["epoch"])


# ----------------------------------------------------------------------------------- Fig 3
def _fig3_sketch(ax_in, ax_out, runs: dict[float, Run]):
    """Trained networks of sample 0 re-simulated with dt = 0.1 (SPEC 5.3, Fig 3a)."""
    for zhat, run in sorted(runs.items()):
        task = run.task()
        fine = type(task)(**(task.params() | {"dt": 0.1}))
        batch = fine.sample(1, None)
        t = np.arange(1, fine.n_steps + 1) * fine.dt
        first = True
        for g, color in G_COLORS.items():
            idx = np.flatnonzero(select(run, g) & (run.data.seed.values == run.data.seed.values.min()))
            if idx.size == 0:
                continue
            out = run.ensemble().select(idx[:1]).simulate(batch.inputs, fine.dt)[0, 0, :, 0].numpy()
            ax_out.plot(t, out, color=color, lw=1.2, ls="-" if zhat == 0.5 else ":",
                        label=f"g = {g:g}" if zhat == max(runs) else None)
            if first:
                ax_out.plot([fine.T - fine.t_dec], [zhat], "o", color="k", ms=3)
                first = False
        if zhat == min(runs):
            ax_in.plot(t, batch.inputs[0, :, 0], color="k", lw=1.2)
    for ax in (ax_in, ax_out):
        for v in (1.0, 100.0):
            ax.axvline(v, color="0.6", ls="--", lw=0.8)
    ax_in.set_ylabel("input u")
    ax_out.set_ylabel("output z")
    ax_out.set_xlabel("time t (dt = 0.1)")
    ax_out.legend(frameon=False, loc="center right")


def _loss_panel(ax, run: Run, theory_on: bool = True):
    zhat = target_of(run)
    x = _x_axis(run)
    l0 = zhat**2 / 2
    for g, color in G_COLORS.items():
        sel = select(run, g)
        if sel.any():
            band(ax, x, run.data.loss.values[sel], color, label=f"g = {g:g}")
            if theory_on:
                curves = theory.theory_curves(x, zhat, g)
                ax.plot(x, curves["loss3"], **THEORY_STYLE)
    ax.set_ylim(0, 1.05 * l0)
    ax.set_xlim(0, X_RANGE.get(zhat, x[-1]))
    ax.set_ylabel("loss")
    ax.set_title(f"ẑ = {zhat:g}")


def _sv_panel(ax, run: Run):
    zhat = target_of(run)
    x = _x_axis(run)[run.data.rec.values]
    for g, color in G_COLORS.items():
        sel = select(run, g)
        if not sel.any():
            continue
        sv = run.data.sv_dw.values[sel]
        band(ax, x, sv[:, :, 0], color, label=f"s1, g = {g:g}")
        band(ax, x, sv[:, :, 1], color, ls=":", label=f"s2, g = {g:g}")
        curves = theory.theory_curves(x, zhat, g)
        ax.plot(x, curves["s_plus3"], **THEORY_STYLE)
        ax.plot(x, curves["s_minus"], color="0.3", ls="-.", lw=1.0)
    ax.set_xlim(0, X_RANGE.get(zhat, x[-1]))
    ax.set_xlabel("effective learning time x = η0 · epoch")
    ax.set_ylabel("singular values of ΔW")


def fig3(runs: dict[str, Run]):
    runs = by_target(runs)
    fig = plt.figure(figsize=(9, 4.2), constrained_layout=True)
    grid = fig.add_gridspec(2, 3)
    sketch = grid[:, 0].subgridspec(2, 1, height_ratios=(1, 2))
    _fig3_sketch(fig.add_subplot(sketch[0]), fig.add_subplot(sketch[1]), runs)
    letter(fig.axes[0])
    for col, zhat in enumerate(sorted(runs), start=1):
        _loss_panel(fig.add_subplot(grid[0, col]), runs[zhat])
        _sv_panel(fig.add_subplot(grid[1, col]), runs[zhat])
        letter(fig.axes[-2], chr(ord("a") + col))  # (b, c) the losses, (d, e) the singular values
        letter(fig.axes[-1], chr(ord("c") + col))
    fig.axes[2].legend(frameon=False)
    n = next(iter(runs.values())).spec.n
    caption = f"""
Fig 3. Linear RNNs (N = {n}) trained with SGD on the input-driven fixed point.
(a) Input and outputs of trained networks (sample 0; solid ẑ = 0.5, dotted ẑ = 2) re-simulated with
dt = 0.1 (training used dt = 0.5); dots mark the targets. (b, c) Loss vs effective time x = β²τ = η0·epoch
for g = 0 and 0.6 (mean ± sd over seeds); dashed: third-order theory (eq. 48) with the cut rule.
(d, e) Largest (solid) and second (dotted) singular values of ΔW; dashed: s+ to third order
(eq. 65), dash-dot: s− (eq. 66).
"""
    return fig, caption


# ----------------------------------------------------------------------------------- Fig 4
def fig4(runs: dict[str, Run]):
    runs = by_target(runs)
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.6), constrained_layout=True)
    g_dense = np.linspace(0, 0.95, 200)
    theory_lines = [(1 - g_dense**2) ** 2, 1 - g_dense**2, 1 / (1 - g_dense**2), theory.shuffle_loss_ratio(g_dense)]
    labels = ["conv. time τc / τc(g=0)", "‖ΔW‖ / ‖ΔW‖(g=0)", "mean gradient / (g=0)", "shuffled loss / L0"]
    left_out = []
    for zhat, run in sorted(runs.items()):
        stats = linear_statistics(run)
        converged = np.isfinite(stats["tau_c"])  # one set of networks for all four panels
        if not converged.all():
            gs = ", ".join(f"{v:g}" for v in np.unique(stats["g"][~converged]))
            left_out.append(f"{int((~converged).sum())} of {converged.size} networks at ẑ = {zhat:g} (g = {gs})")
        for ax, key in zip(axes, ("tau_c", "norm_dw", "grad", "shuffle")):
            levels, mean, sd, _ = mean_sd_by_g(stats["g"], stats[key], include=converged)
            ref = mean[0] if key != "shuffle" else 1.0
            ax.errorbar(levels, mean / ref, yerr=sd / ref, color=ZHAT_COLORS.get(zhat), marker="o", ms=3, lw=1.2,
                        capsize=2, label=f"ẑ = {zhat:g}")
    for ax, line, label in zip(axes, theory_lines, labels):
        ax.plot(g_dense, line, **THEORY_STYLE, label="first-order theory")
        ax.set_xlabel("g")
        ax.set_ylabel(label)
    axes[2].set_ylim(-0.3, 6.3)
    axes[0].legend(frameon=False)
    letter(axes)
    excluded = ("never converged and are left out of every panel: " + "; ".join(left_out)) if left_out else \
        "every network converged"
    caption = f"""
Fig 4. Linear RNNs, statistics over seeds (mean ± sd) against g, for ẑ = 0.5 and 2, over the networks whose
loss fell below 5 % of ẑ²/2 ({excluded}).
(a) Convergence learning time τc = η·(first epoch with loss < 5 % of ẑ²/2), normalised by its g = 0 mean;
theory (1 − g²)². (b) ‖ΔW‖F at the last recorded epoch, normalised; theory 1 − g². (c) Mean gradient norm
before convergence, normalised; theory 1/(1 − g²). (d) Loss after shuffling W0 (then adding the final ΔW),
divided by L0 = ẑ²/2 and averaged over shuffles; theory g⁴(2 − g²)² (eq. 69). Dashed: first-order theory.
"""
    return fig, caption


# ----------------------------------------------------------------------------------- Fig S3
def figS3(runs: dict[str, Run]):
    runs = by_target(runs)
    fig, axes = plt.subplots(3, 2, figsize=(7, 7), constrained_layout=True)
    for col, zhat in enumerate(sorted(runs)):
        run = runs[zhat]
        _loss_panel(axes[0, col], run)
        tau = run.data.lr.values[:, None] * run.data.rec.values[None, :]
        for row, (g, ylow) in enumerate(((0.0, 1e-10), (0.6, 1e-8)), start=1):
            ax = axes[row, col]
            sel = select(run, g)
            if not sel.any():
                continue
            sv = run.data.sv_dw.values[sel]
            t = tau[sel][0]
            for i in range(min(5, sv.shape[-1])):
                band(ax, t, sv[:, :, i], plt.cm.viridis(i / 5), label=f"s{i + 1}")
            x = theory.collapsed_time(t, g)
            curves = theory.theory_curves(x, zhat, g)
            ax.plot(t, curves["s_plus3"], **THEORY_STYLE)
            ax.plot(t, curves["s_minus"], **THEORY_STYLE)
            ax.set_yscale("log")
            ax.set_ylim(ylow, 10)
            ax.set_xlim(0, TAU_RANGE.get(zhat, t[-1]))
            ax.set_xlabel("learning time τ = η · epoch")
            ax.set_title(f"g = {g:g}, ẑ = {zhat:g}")
            if col == 0:
                ax.legend(frameon=False, ncol=2)
    letter(axes)  # (a, b) the losses, then row by row (c-f)
    caption = """
Fig S3. (a, b) Loss vs effective time x (as Fig 3). (c-f) The five largest singular values of ΔW
(mean ± sd over seeds, log scale) vs raw learning time τ for g = 0 (c, d) and g = 0.6 (e, f); dashed:
third-order s+ and s−. Singular values are tracked at every epoch by warm-started subspace iteration,
exact for the leading ones; values at the numerical noise floor are not resolved individually.
"""
    return fig, caption
