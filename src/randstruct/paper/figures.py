"""The paper's figures, one function per figure, drawn from run stores and the theory only.

Each ``figX(runs)`` takes the runs of the experiment the figure needs (a dict label -> Run, as
returned by :func:`randstruct.paper.experiments.run_experiment`) and returns ``(figure, caption)``; the
caption states what is drawn and every deliberate deviation from the published figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from randstruct import theory  # noqa: E402
from randstruct.runs import Run  # noqa: E402
from randstruct.paper.stats import by_target, linear_statistics  # noqa: E402
from randstruct.paper.stats import zhat as target_of  # noqa: E402

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
    runs = by_target(runs)
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
    runs = by_target(runs)
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
    runs = by_target(runs)
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
    runs = by_target(runs)
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


# ----------------------------------------------------------------------------------- E1: Figs 1, 2, S2
TASK_ORDER = ("flipflop", "mante", "romo")
TASK_NAMES = {"flipflop": "flip-flop", "mante": "context-dependent integration", "romo": "parametric WM"}
TASK_COLORS = {"flipflop": "#1f77b4", "mante": "#ff7f0e", "romo": "#2ca02c"}
LOSS_XMAX = {"flipflop": 200, "mante": 1000, "romo": 6000}  # SPEC 3.3 (d-f)


def _gain_color(g: float, g_max: float = 2.1):
    return plt.cm.viridis(min(g / g_max, 1.0) * 0.9)


def _member(run: Run, g: float, sample: int) -> int:
    """Index of the network with the gain closest to ``g`` and the ``sample``-th seed (clipped)."""
    ds = run.data
    g_near = ds.g.values[np.argmin(np.abs(ds.g.values - g))]
    idx = np.flatnonzero(np.isclose(ds.g.values, g_near))
    return int(idx[min(sample, idx.size - 1)])


def _illustrate(axes, run: Run, task_name: str):
    """Trained network (sample 0, g nearest 1.2) on the deterministic "test" trial (SPEC 3.3 a-c)."""
    member = _member(run, 1.2, 0)
    task = run.task()
    if task_name == "flipflop":
        task = type(task)(**(task.params() | {"T": 100.0}))
    batch = task.test_batch(1, rng=0)
    out = run.ensemble().select([member]).simulate(batch.inputs, task.dt)[0, 0].numpy()
    t = np.arange(1, task.n_steps + 1) * task.dt
    masked = np.where(batch.mask[0] > 0, batch.targets[0], np.nan)
    u = batch.inputs[0]
    if task_name == "mante":
        panels = [("sensory", u[:, 2:4], None), ("context", u[:, 0:2], None), ("output", out, masked)]
    else:
        panels = [("input", u, None)] + [(f"output {i + 1}", out[:, i:i + 1], masked[:, i:i + 1])
                                         for i in range(out.shape[1])]
    for ax, (label, lines, target) in zip(axes, panels):
        for i in range(lines.shape[1]):
            ax.plot(t, lines[:, i], lw=1.0, color=plt.cm.tab10(i))
        if target is not None:
            ax.plot(t, target[:, 0], color="0.2", ls="--", lw=1.0)
        ax.set_ylabel(label)
        ax.tick_params(labelbottom=False)
    if task_name == "mante":
        axes[-1].set_ylim(-0.6, 0.6)
    axes[-1].tick_params(labelbottom=True)
    axes[-1].set_xlabel("time t")
    axes[0].set_title(f"{TASK_NAMES[task_name]} (g = {run.data.g.values[member]:g})")


def fig1(runs: dict[str, Run]):
    fig = plt.figure(figsize=(10, 10), constrained_layout=True)
    grid = fig.add_gridspec(4, 3, height_ratios=(1.6, 1, 1, 1))
    for col, task in enumerate(t for t in TASK_ORDER if t in runs):
        run = runs[task]
        ds = run.data
        sub = grid[0, col].subgridspec(3, 1)
        _illustrate([fig.add_subplot(sub[i]) for i in range(3)], run, task)
        ax_loss, ax_sv, ax_tr = (fig.add_subplot(grid[r, col]) for r in (1, 2, 3))
        sample = min(3, len(np.unique(ds.seed.values)) - 1)
        l0 = None
        for g in (0.0, 0.9):
            m = _member(run, g, sample)
            color = _gain_color(ds.g.values[m])
            ax_loss.plot(ds.epoch.values, ds.loss.values[m], color=color, label=f"g = {ds.g.values[m]:g}")
            l0 = l0 if l0 is not None else float(ds.loss.values[m, 0])
            if "functional_rank" in ds and ds.functional_rank.values[m] > 0:
                ax_sv.plot(np.arange(1, 12), ds.sv_dw.values[m, -1, :11], "o-", ms=3, color=color)
                ax_tr.plot(ds["rank"].values[1:12], ds.trunc_loss_dw.values[m, 1:12], "o-", ms=3, color=color)
        ax_loss.set(xlim=(0, min(LOSS_XMAX[task], ds.sizes["epoch"])), xlabel="epoch", ylabel="loss")
        ax_loss.set_yticks([0, l0], ["0", "L0"])
        ax_loss.legend(frameon=False)
        ax_sv.set(ylim=(-0.15, 2.15), yticks=[0, 1, 2], xlabel="rank", ylabel="singular values of ΔW")
        ax_tr.set(xlabel="rank r of truncated ΔW", ylabel="loss")
        if "trunc_loss_dw" in ds:
            m0 = _member(run, 0.0, sample)
            ax_tr.set_yticks([0, float(ds.trunc_loss_dw.values[m0, 0])], ["0", "L0"])
    caption = """
Fig 1. Nonlinear RNNs trained on three tasks (columns). (a-c) A trained network (sample 0, g nearest 1.2)
on the deterministic test trial; dashed: target where the mask is on (flip-flop shown with T = 100,
trained with T = 50). (d-f) Training loss of g = 0 and 0.9 (sample 3, or the last sample if fewer
were trained), early part of training; L0 = epoch-0 loss of the g = 0 network. (g-i) The 11 largest
singular values of ΔW at the last recorded epoch. (j-l) Loss of W0 + rank-r truncation of ΔW with the
trained input/output vectors, r = 1..11; L0 = rank-0 loss of the g = 0 network. Evaluation set: one fixed,
seeded set of 512 trials per network for every rank (the paper drew a fresh batch per rank).
"""
    return fig, caption


FIG2_PANELS = (("conv_epoch", "convergence time (epochs)"), ("norm_dw_last_rec", "‖ΔW‖F"),
               ("rel_shuffle_loss", "loss after shuffling W0 / L0"), ("functional_rank", "functional rank"))


def fig2(runs: dict[str, Run], min_samples: int = 5):
    from randstruct.paper.stats import per_g

    fig, axes = plt.subplots(1, 4, figsize=(11, 2.7), constrained_layout=True)
    for task in (t for t in TASK_ORDER if t in runs):
        run = runs[task]
        need = min(min_samples, len(np.unique(run.data.seed.values)))
        stats = per_g(run.data, tuple(k for k, _ in FIG2_PANELS), need)
        for ax, (key, label) in zip(axes, FIG2_PANELS):
            mean, sd = stats[f"{key}_mean"].values, stats[f"{key}_sd"].values
            ax.plot(stats.g.values, mean, "o-", ms=3, color=TASK_COLORS[task], label=TASK_NAMES[task])
            ax.fill_between(stats.g.values, mean - sd, mean + sd, color=TASK_COLORS[task], alpha=0.2, lw=0)
            ax.set(xlabel="g", ylabel=label)
    axes[1].set_ylim(bottom=0)
    axes[2].set_ylim(bottom=0)
    axes[3].set_ylim(0, 12)
    axes[0].legend(frameon=False)
    caption = """
Fig 2. Statistics over networks against the initial connectivity strength g (mean ± population sd
over samples that converged by both criteria; a g point is drawn only if every sample qualifies).
(a) Convergence time: first epoch with training loss < 5 % of the epoch-0 loss. (b) ‖ΔW‖F at the last
recorded epoch. (c) Loss after shuffling all entries of W0 (then adding the trained ΔW), divided by the
epoch-0 training loss, mean over 10 shuffles. (d) Functional rank: smallest rank r whose truncation of
ΔW brings the loss below 5 % of the rank-0 loss. Deviation: panel (a) is not clipped at 630 epochs.
"""
    return fig, caption


def figS2(runs: dict[str, Run]):
    fig = plt.figure(figsize=(11, 11), constrained_layout=True)
    grid = fig.add_gridspec(1, 3)
    gains = (0.0, 0.9, 1.8)
    theta = np.linspace(0, 2 * np.pi, 200)
    for col, task in enumerate(t for t in TASK_ORDER if t in runs):
        ds = runs[task].data
        sub = grid[0, col].subgridspec(5, 2)
        ax_dw, ax_w = fig.add_subplot(sub[0, :]), fig.add_subplot(sub[1, :])
        for g in gains:
            m = _member(runs[task], g, 0)
            color = _gain_color(g)
            ranks = np.arange(1, 41)
            ax_dw.plot(ranks, ds.sv_final_dw.values[m, :40], color=color, label=f"g = {g:g}")
            ax_w.plot(ranks, ds.sv_w.values[m, :40], color=color)
        ax_dw.set(ylabel="SVs of ΔW", title=TASK_NAMES[task])
        ax_w.set(ylabel="SVs of W", xlabel="rank")
        ax_dw.legend(frameon=False)
        for row, g in enumerate(gains, start=2):
            m = _member(runs[task], g, 0)
            pairs = [("ΔW", ds.eig_dw.values[m])] + ([("W", ds.eig_w.values[m])] if g > 0 else [])
            for c, (name, ev) in enumerate(pairs):
                ax = fig.add_subplot(sub[row, c])
                ax.scatter(ev.real, ev.imag, s=3, color=_gain_color(g))
                ax.plot(g * np.cos(theta), g * np.sin(theta), color="0.5", lw=0.8)
                ax.axvline(1.0, color="0.3", ls="--", lw=0.8)
                ax.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), aspect="equal", title=f"{name}, g = {g:g}")
                ax.tick_params(labelsize=6)
    caption = """
Fig S2. Spectra of sample 0 at g = 0, 0.9, 1.8 (nearest available gains). Top: the 40 largest singular
values of ΔW and of W. Bottom: eigenvalues of ΔW (left) and W (right; for g = 0, W = ΔW) in the complex
plane, with the circle of radius g that holds the bulk of W0's eigenvalues and a dashed line at Re λ = 1.
"""
    return fig, caption


# ----------------------------------------------------------------------------------- E2: Fig S1
def figS1(runs: dict[str, Run], min_samples: int = 3):
    from randstruct.paper.stats import per_g

    tasks = [t for t in TASK_ORDER if any(label.startswith(t + "_N") for label in runs)]
    fig, axes = plt.subplots(4, len(tasks), figsize=(3.4 * len(tasks), 9), constrained_layout=True, squeeze=False)
    rows = (("conv_epoch", "convergence time (epochs)"), ("norm_dw", "‖ΔW‖F (final)"),
            ("norm_w", "‖W0 + ΔW‖F"), ("functional_rank", "functional rank"))
    for col, task in enumerate(tasks):
        these = sorted((r.spec.n, r) for label, r in runs.items() if label.startswith(task + "_N"))
        ns = np.array([n for n, _ in these])
        per_n = []
        for n, run in these:
            ds = run.data.assign(norm_w=("net", np.sqrt((run.data.sv_w.values ** 2).sum(-1))))
            need = min(min_samples, len(np.unique(ds.seed.values)))
            per_n.append(per_g(ds, tuple(k for k, _ in rows), need))
        for g in per_n[0].g.values:
            color = _gain_color(g)
            for ax, (key, label) in zip(axes[:, col], rows):
                mean = np.array([s[f"{key}_mean"].sel(g=g).item() for s in per_n])
                sd = np.array([s[f"{key}_sd"].sel(g=g).item() for s in per_n])
                ax.plot(ns, mean, "o-", ms=3, color=color, label=f"g = {g:g}")
                ax.fill_between(ns, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)
                ax.set(xscale="log", ylabel=label)
                ax.set_xticks(ns, [str(n) for n in ns])
                ax.minorticks_off()
        axes[0, col].set_title(TASK_NAMES[task])
        axes[-1, col].set_xlabel("network size N")
    axes[0, 0].legend(frameon=False)
    caption = """
Fig S1. Scaling with network size N (Adam with lr ∝ 1/N). Rows: convergence time, ‖ΔW‖F of the final
ΔW, ‖W‖F = ‖W0 + ΔW‖F, functional rank; mean ± sd over samples that converged (a point needs at least
3, or all if fewer were trained). Deviation: row 3 shows the norm of the final W as the caption of the
paper says (its code plotted ‖W0‖, which is 0 at g = 0).
"""
    return fig, caption


# ----------------------------------------------------------------------------------- E6: Figs 5, S6
SENTIMENT_BLOCKS = (("w_ih_l0", "U(1) = W_ih layer 1"), ("w_hh_l0", "W(1) = W_hh layer 1"),
                    ("w_ih_l1", "U(2) = W_ih layer 2"), ("w_hh_l1", "W(2) = W_hh layer 2"))
TRUNC_COLORS = {"dw": "#d62728", "w": "black", "w0": "0.55"}


def _sv_triplet(ax, ds, block: str):
    dim = "sv_in" if block == "w_ih_l0" else "sv"
    k = ds[dim].values
    ax.plot(k, ds[f"sv_initial_{block}"].values, "--", color=TRUNC_COLORS["w0"], label="W0")
    ax.plot(k, ds[f"sv_final_{block}"].values, color=TRUNC_COLORS["w"], label="W")
    ax.plot(k, ds[f"sv_delta_{block}"].values, color=TRUNC_COLORS["dw"], label="ΔW")
    ax.set(xlabel="rank", ylabel="singular value")
    ax.set_ylim(bottom=0)


def fig5(runs: dict):
    ds = runs["sentiment"].data
    n = int(ds.attrs["N"])
    fig, (ax_sv, ax_acc) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    _sv_triplet(ax_sv, ds, "w_hh_l1")
    ax_sv.set_xticks([0, n // 2, n])
    ax_sv.legend(frameon=False)
    ax_sv.set_title("singular values of W(2)")
    ranks, final = ds["rank"].values, float(ds.val_acc.values[-1])
    ax_acc.plot(ranks, ds.trunc_dw_acc.values, color=TRUNC_COLORS["dw"], label="truncate ΔW")
    ax_acc.plot(ranks, ds.trunc_w_acc.values, color=TRUNC_COLORS["w"], label="truncate W")
    ax_acc.axhline(final, ls="--", color="0.55", label=f"final ({final:.2f})")
    ax_acc.set(xlabel="rank r kept", ylabel="validation accuracy", xticks=[0, n // 2, n], ylim=(0.45, 1.0))
    ax_acc.legend(frameon=False, loc="lower right")
    caption = f"""
Fig 5. Two-layer LSTM (N = {n}) on binary sentiment ({runs['sentiment'].source}). (a) Singular values of the
layer-2 recurrent weights (four gates stacked, 4N x N) for W0 (dashed), the trained W and ΔW = W − W0.
(b) Validation accuracy when all three 4N x N blocks are truncated to rank r: W0 + rank-r ΔW (red) or
rank-r W (black); dashed: final accuracy.
"""
    return fig, caption


def figS6(runs: dict):
    ds = runs["sentiment"].data
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), constrained_layout=True)
    epochs = ds.epoch.values
    for split, ls in (("train", "-"), ("val", "--")):
        axes[0, 0].plot(epochs, ds[f"{split}_loss"].values, ls=ls, color="k", label=split)
        axes[1, 0].plot(epochs, ds[f"{split}_acc"].values, ls=ls, color="k", label=split)
    axes[0, 0].set(xlabel="epoch", ylabel="loss")
    axes[1, 0].set(xlabel="epoch", ylabel="accuracy", ylim=(0.45, 1.0))
    axes[0, 0].legend(frameon=False)
    for ax, (block, title) in zip(axes[:, 1:].T.ravel(), SENTIMENT_BLOCKS):
        _sv_triplet(ax, ds, block)
        ax.set_title(title)
    axes[0, 1].legend(frameon=False)
    caption = f"""
Fig S6. Training of the LSTM of Fig 5 ({runs['sentiment'].source}). (a) Training (solid) and validation (dashed)
loss and (b) accuracy over all epochs (the published panel showed 100 epochs). (c-f) Singular values of
the input and recurrent weights of both layers for W0 (dashed), W and ΔW.
"""
    return fig, caption
