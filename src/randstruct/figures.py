"""The paper's figures, one function per figure, drawn from run stores and the theory only.

Each ``figX(runs)`` takes the runs of the experiment the figure needs (a dict label -> Run, as
returned by :func:`randstruct.experiments.run_experiment`) and returns ``(figure, caption)``; the
caption states what is drawn and every deliberate deviation from the published figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import theory  # noqa: E402
from .experiments import LINEAR_ETA0  # noqa: E402
from .runs import Run  # noqa: E402
from .stats import linear_statistics  # noqa: E402
from .stats import zhat as target_of  # noqa: E402

THEORY_STYLE = dict(color="0.3", ls="--", lw=1.2)
G_COLORS = {0.0: "#1f77b4", 0.6: "#d62728"}
ZHAT_COLORS = {0.5: "#2ca02c", 2.0: "#9467bd"}
X_RANGE = {0.5: 1.9, 2.0: 0.6}  # effective-time ranges of the published loss panels (SPEC 5.3)
TAU_RANGE = {0.5: 2.2, 2.0: 0.4}  # raw-time ranges of the Fig S3 singular-value panels (SPEC 5.5)

plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7,
                     "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 150})


def save(fig, caption: str, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``name``.png, .pdf and the caption as .txt; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf", out / f"{name}.txt"]
    fig.savefig(paths[0], bbox_inches="tight", dpi=200)
    fig.savefig(paths[1], bbox_inches="tight")
    paths[2].write_text(caption.strip() + "\n")
    plt.close(fig)
    return paths


def band(ax, x, samples, color, label=None, ls="-", alpha=0.25):
    """Mean line with a +- population-sd band over the first axis of ``samples``."""
    samples = np.asarray(samples, dtype=float)
    mean, sd = np.nanmean(samples, axis=0), np.nanstd(samples, axis=0)
    ax.plot(x, mean, color=color, ls=ls, label=label, lw=1.4)
    ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=alpha, lw=0)


def _select(run: Run, g: float):
    """Boolean mask of the networks with gain ``g``."""
    return np.isclose(run.data.g.values, g)


def _linear_runs(runs: dict[str, Run]) -> dict[float, Run]:
    return {target_of(r): r for r in runs.values()}


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
            idx = np.flatnonzero(_select(run, g) & (run.data.seed.values == run.data.seed.values.min()))
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
        sel = _select(run, g)
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
        sel = _select(run, g)
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
    runs = _linear_runs(runs)
    fig = plt.figure(figsize=(9, 4.2), constrained_layout=True)
    grid = fig.add_gridspec(2, 3)
    sketch = grid[:, 0].subgridspec(2, 1, height_ratios=(1, 2))
    _fig3_sketch(fig.add_subplot(sketch[0]), fig.add_subplot(sketch[1]), runs)
    for col, zhat in enumerate(sorted(runs), start=1):
        _loss_panel(fig.add_subplot(grid[0, col]), runs[zhat])
        _sv_panel(fig.add_subplot(grid[1, col]), runs[zhat])
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
def _by_g(g: np.ndarray, values: np.ndarray):
    levels = np.unique(g)
    return levels, [values[np.isclose(g, lv)] for lv in levels]


def fig4(runs: dict[str, Run]):
    runs = _linear_runs(runs)
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.6), constrained_layout=True)
    g_dense = np.linspace(0, 0.95, 200)
    theory_lines = [(1 - g_dense**2) ** 2, 1 - g_dense**2, 1 / (1 - g_dense**2), theory.shuffle_loss_ratio(g_dense)]
    labels = ["conv. time τc / τc(g=0)", "‖ΔW‖ / ‖ΔW‖(g=0)", "mean gradient / (g=0)", "shuffled loss / L0"]
    for zhat, run in sorted(runs.items()):
        stats = linear_statistics(run)
        for ax, key in zip(axes, ("tau_c", "norm_dw", "grad", "shuffle")):
            levels, groups = _by_g(stats["g"], stats[key])
            ref = np.nanmean(groups[0]) if key != "shuffle" else 1.0
            means = np.array([np.nanmean(v) / ref for v in groups])
            sds = np.array([np.nanstd(v) / ref for v in groups])
            ax.errorbar(levels, means, yerr=sds, color=ZHAT_COLORS.get(zhat), marker="o", ms=3, lw=1.2,
                        capsize=2, label=f"ẑ = {zhat:g}")
    for ax, line, label in zip(axes, theory_lines, labels):
        ax.plot(g_dense, line, **THEORY_STYLE, label="first-order theory")
        ax.set_xlabel("g")
        ax.set_ylabel(label)
    axes[2].set_ylim(-0.3, 6.3)
    axes[0].legend(frameon=False)
    caption = """
Fig 4. Linear RNNs, statistics over seeds (mean ± sd) against g, for ẑ = 0.5 and 2.
(a) Convergence learning time τc = η·(first epoch with loss < 5 % of ẑ²/2), normalised by its g = 0 mean;
theory (1 − g²)². (b) ‖ΔW‖F at the last recorded epoch, normalised; theory 1 − g². (c) Mean gradient norm
before convergence, normalised; theory 1/(1 − g²). (d) Loss after shuffling W0 (then adding the final ΔW),
divided by L0 = ẑ²/2 and averaged over shuffles; theory g⁴(2 − g²)² (eq. 69). Dashed: first-order theory.
"""
    return fig, caption


# ----------------------------------------------------------------------------------- Fig S3
def figS3(runs: dict[str, Run]):
    runs = _linear_runs(runs)
    fig, axes = plt.subplots(3, 2, figsize=(7, 7), constrained_layout=True)
    for col, zhat in enumerate(sorted(runs)):
        run = runs[zhat]
        _loss_panel(axes[0, col], run)
        tau = run.data.lr.values[:, None] * run.data.rec.values[None, :]
        for row, (g, ylow) in enumerate(((0.0, 1e-10), (0.6, 1e-8)), start=1):
            ax = axes[row, col]
            sel = _select(run, g)
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
    caption = """
Fig S3. (a, b) Loss vs effective time x (as Fig 3). (c-f) The five largest singular values of ΔW
(mean ± sd over seeds, log scale) vs raw learning time τ for g = 0 (c, d) and g = 0.6 (e, f); dashed:
third-order s+ and s−. Singular values are tracked at every epoch by warm-started subspace iteration,
exact for the leading ones; values at the numerical noise floor are not resolved individually.
"""
    return fig, caption


# ----------------------------------------------------------------------------------- Fig S4
def figS4(runs: dict[str, Run]):
    runs = _linear_runs(runs)
    fig, axes = plt.subplots(3, 2, figsize=(7, 7), constrained_layout=True)
    gains = (0.6, 0.8)
    colors = {0.6: "#1f77b4", 0.8: "#d62728"}
    for col, zhat in enumerate(sorted(runs)):
        run = runs[zhat]
        ds, l0 = run.data, zhat**2 / 2
        seed0 = ds.seed.values == ds.seed.values.min()
        for g in gains:
            idx = np.flatnonzero(_select(run, g) & seed0)
            if idx.size:
                axes[0, col].plot(ds.epoch.values, ds.loss.values[idx[0]], color=colors[g], label=f"g = {g:g}")
        axes[0, col].set_ylim(0, 1.15 * l0)
        axes[0, col].set_title(f"ẑ = {zhat:g}")
        axes[0, col].set_xlabel("epoch")
        axes[0, col].set_ylabel("loss")
        axes[0, col].legend(frameon=False)
        for row, g in enumerate(gains, start=1):
            ax = axes[row, col]
            idx = np.flatnonzero(_select(run, g) & seed0)
            if not idx.size:
                continue
            ev = ds.eig_w_rec.values[idx[0]].real
            for i in range(min(5, ev.shape[-1])):
                ax.plot(ds.rec.values, ev[:, i], color=plt.cm.viridis(i / 5), lw=1.0, label=f"λ{i + 1}")
            ax.axhline(1.0, color="0.3", ls="--", lw=0.8)
            ax.set_ylim(0.8 * g, 1.1)
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"Re λ(W), g = {g:g}")
            diverged = int(ds.diverged_epoch.values[idx[0]])
            if diverged >= 0:
                ax.axvline(diverged, color="k", lw=0.8, ls=":")
                ax.text(diverged, 1.08, " diverged", fontsize=7, va="top")
            if col == 0 and row == 1:
                ax.legend(frameon=False, ncol=5, loc="upper left", handlelength=1.2, columnspacing=0.8)
    caption = """
Fig S4. Failure of learning for a large target. (a, b) Training loss vs epoch for g = 0.6 and 0.8
(seed 0), ẑ = 2 and 4, y-range [0, 1.15 L0]. (c-f) Real parts of the five eigenvalues of W with the
largest real part vs epoch; dashed: Re λ = 1, dotted: epoch at which the run became non-finite
(the trajectory is NaN afterwards). Seed 0 everywhere (the published panel for ẑ = 4, g = 0.6 used a
hand-picked sample 2).
"""
    return fig, caption


# ----------------------------------------------------------------------------------- Fig S5
def figS5(runs: dict[str, Run]):
    fig, axes = plt.subplots(1, 4, figsize=(11, 2.6), constrained_layout=True)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(runs)))
    for color, (label, run) in zip(colors, sorted(runs.items(), key=lambda kv: kv[1].data.g.values[0])):
        ds = run.data
        g = float(ds.g.values[0])
        task = run.task()
        batch = task.sample(1, None)
        t = np.arange(1, task.n_steps + 1) * task.dt
        out = run.ensemble().simulate(batch.inputs, task.dt)[0, 0, :, 0].numpy()
        axes[0].plot(t, out, color=color)
        axes[1].plot(ds.epoch.values, ds.loss.values[0] / ds.loss.values[0, 0], color=color, label=f"g = {g:g}")
        ev = ds.eig_w_rec.values[0]
        top_imag = ev[np.arange(ev.shape[0]), np.nanargmax(ev.imag, axis=1)]
        axes[2].plot(ds.rec.values, top_imag.imag, color=color)
        axes[3].plot(ds.rec.values, top_imag.real, color=color)
        axes[3].plot(ds.rec.values, ev[:, 0].real, color=color, ls="--", lw=0.9)
    target = np.cos(2 * np.pi * t / 5)
    axes[0].plot(t, target, **THEORY_STYLE, label="target")
    axes[0].axvspan(0, 10, color="0.92", zorder=-1)
    axes[0].set(ylim=(-1.3, 1.3), xlabel="time t", ylabel="output z")
    axes[1].set(ylim=(0, 1.25), xlabel="epoch", ylabel="loss / initial loss")
    axes[2].axhline(2 * np.pi / 5, color="0.3", ls=":", lw=0.8)
    axes[2].set(xlabel="epoch", ylabel="Im λ (largest imaginary part)")
    axes[3].axhline(1.0, **THEORY_STYLE)
    axes[3].set(xlabel="epoch", ylabel="Re λ")
    axes[0].legend(frameon=False, loc="lower left")
    axes[1].legend(frameon=False)
    caption = """
Fig S5. Learning a cosine (linear RNN, one shared input/output vector, x0 = v, dt = 0.1).
(a) Outputs of the trained networks over the whole trial; dashed: target cos(2π t / 5); shaded: the span
the loss covers. (b) Training loss relative to its epoch-0 value. (c) Imaginary part of the eigenvalue of
W with the largest imaginary part (dotted: 2π/5, the continuous-time target frequency). (d) Real part of
that eigenvalue (solid) and the largest real part of any eigenvalue (dashed thin); dashed grey: Re λ = 1.
Deviation: the reference line at 1 is drawn in (d), where the stability boundary lives (the published
code drew it in (c)).
"""
    return fig, caption
