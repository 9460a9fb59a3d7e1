"""E4 and E5, linear networks whose learning is read in the eigenvalues of W: Fig S4 (failure for a
large target) and Fig S5 (a cosine, an oscillation at the stability boundary)."""

from __future__ import annotations

import numpy as np

from randstruct.paper.figures.common import THEORY_STYLE, letter, plt, select
from randstruct.paper.stats import by_target, top_imaginary
from randstruct.runs import Run


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
            idx = np.flatnonzero(select(run, g) & seed0)
            if idx.size:
                axes[0, col].plot(ds.epoch.values, ds.loss.values[idx[0]], color=colors[g], label=f"g = {g:g}")
        axes[0, col].set_ylim(0, 1.15 * l0)
        axes[0, col].set_title(f"ẑ = {zhat:g}")
        axes[0, col].set_xlabel("epoch")
        axes[0, col].set_ylabel("loss")
        axes[0, col].legend(frameon=False)
        for row, g in enumerate(gains, start=1):
            ax = axes[row, col]
            idx = np.flatnonzero(select(run, g) & seed0)
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
    letter(axes)
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
        top_imag = top_imaginary(ev)
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
    letter(axes)
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
