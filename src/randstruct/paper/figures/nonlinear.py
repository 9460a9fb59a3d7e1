"""E1 and E2, nonlinear networks on the cognitive tasks: Figs 1, 2, S2 and the size scaling of Fig S1."""

from __future__ import annotations

import numpy as np

from randstruct.paper.figures.common import gain_color, letter, member_near, plt
from randstruct.paper.stats import per_g
from randstruct.runs import Run

TASK_ORDER = ("flipflop", "mante", "romo")
TASK_NAMES = {"flipflop": "flip-flop", "mante": "context-dependent integration", "romo": "parametric WM"}
TASK_COLORS = {"flipflop": "#1f77b4", "mante": "#ff7f0e", "romo": "#2ca02c"}
LOSS_XMAX = {"flipflop": 200, "mante": 1000, "romo": 6000}  # SPEC 3.3 (d-f)


def _illustrate(axes, run: Run, task_name: str):
    """Trained network (sample 0, g nearest 1.2) on the deterministic "test" trial (SPEC 3.3 a-c)."""
    member = member_near(run, 1.2, 0)
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
    drawn = set()  # (task, g) shown in (g-l): networks with a functional rank
    grid = fig.add_gridspec(4, 3, height_ratios=(1.6, 1, 1, 1))
    for col, task in enumerate(t for t in TASK_ORDER if t in runs):
        run = runs[task]
        ds = run.data
        sub = grid[0, col].subgridspec(3, 1)
        trial = [fig.add_subplot(sub[i]) for i in range(3)]
        _illustrate(trial, run, task)
        ax_loss, ax_sv, ax_tr = (fig.add_subplot(grid[r, col]) for r in (1, 2, 3))
        for row, ax in enumerate((trial[0], ax_loss, ax_sv, ax_tr)):  # (a-c) in the first row, ..., (j-l)
            letter(ax, chr(ord("a") + 3 * row + col))
        sample = min(3, len(np.unique(ds.seed.values)) - 1)
        l0 = None
        for g in (0.0, 0.9):
            m = member_near(run, g, sample)
            color = gain_color(ds.g.values[m])
            ax_loss.plot(ds.epoch.values, ds.loss.values[m], color=color, label=f"g = {ds.g.values[m]:g}")
            l0 = l0 if l0 is not None else float(ds.loss.values[m, 0])
            if "functional_rank" in ds and ds.functional_rank.values[m] > 0:
                drawn.add((task, float(ds.g.values[m])))
                ax_sv.plot(np.arange(1, 12), ds.sv_dw.values[m, -1, :11], "o-", ms=3, color=color)
                ax_tr.plot(ds["rank"].values[1:12], ds.trunc_loss_dw.values[m, 1:12], "o-", ms=3, color=color)
        ax_loss.set(xlim=(0, min(LOSS_XMAX[task], ds.sizes["epoch"])), xlabel="epoch", ylabel="loss")
        ax_loss.set_yticks([0, l0], ["0", "L0"])
        ax_loss.legend(frameon=False)
        ax_sv.set(ylim=(-0.15, 2.15), yticks=[0, 1, 2], xlabel="rank", ylabel="singular values of ΔW")
        ax_tr.set(xlabel="rank r of truncated ΔW", ylabel="loss")
        if "trunc_loss_dw" in ds:
            m0 = member_near(run, 0.0, sample)
            ax_tr.set_yticks([0, float(ds.trunc_loss_dw.values[m0, 0])], ["0", "L0"])
    caption = """
Fig 1. Nonlinear RNNs trained on three tasks (columns). (a-c) A trained network (sample 0, g nearest 1.2)
on the deterministic test trial; dashed: target where the mask is on (flip-flop shown with T = 100,
trained with T = 50). (d-f) Training loss of g = 0 and 0.9 (sample 3, or the last sample if fewer
were trained), early part of training; L0 = epoch-0 loss of the g = 0 network. (g-i) The 11 largest
singular values of ΔW at the last recorded epoch. (j-l) Loss of W0 + rank-r truncation of ΔW with the
trained input/output vectors, r = 1..11; L0 = rank-0 loss of the g = 0 network. Evaluation set: one fixed,
seeded set of 512 trials per network for every rank (the paper drew a fresh batch per rank).
(g-l) show only networks that converged (a functional rank); {left_out}
"""
    left = [f"{TASK_NAMES[t]} at g = {g:g}" for t in TASK_ORDER if t in runs for g in (0.0, 0.9)
            if (t, float(runs[t].data.g.values[member_near(runs[t], g, 0)])) not in drawn]
    left_out = (f"left out there (not converged): {'; '.join(left)}." if left else "every network shown converged.")
    return fig, caption.replace("{left_out}", left_out)


FIG2_PANELS = (("conv_epoch", "convergence time (epochs)"), ("norm_dw_last_rec", "‖ΔW‖F"),
               ("rel_shuffle_loss", "loss after shuffling W0 / L0"), ("functional_rank", "functional rank"))


def fig2(runs: dict[str, Run], min_samples: int = 5):
    fig, axes = plt.subplots(1, 4, figsize=(11, 2.7), constrained_layout=True)
    rank_top = 0.0
    for task in (t for t in TASK_ORDER if t in runs):
        run = runs[task]
        need = min(min_samples, len(np.unique(run.data.seed.values)))
        stats = per_g(run.data, tuple(k for k, _ in FIG2_PANELS), need)
        for ax, (key, label) in zip(axes, FIG2_PANELS):
            mean, sd = stats[f"{key}_mean"].values, stats[f"{key}_sd"].values
            ax.plot(stats.g.values, mean, "o-", ms=3, color=TASK_COLORS[task], label=TASK_NAMES[task])
            ax.fill_between(stats.g.values, mean - sd, mean + sd, color=TASK_COLORS[task], alpha=0.2, lw=0)
            ax.set(xlabel="g", ylabel=label)
            if key == "functional_rank" and np.isfinite(mean + sd).any():
                rank_top = max(rank_top, float(np.nanmax(mean + sd)))
    axes[1].set_ylim(bottom=0)
    axes[2].set_ylim(bottom=0)
    axes[3].set_ylim(0, max(12, rank_top + 1))  # the paper's 0-12, widened where ranks (+ sd) go higher
    axes[0].legend(frameon=False)
    letter(axes)
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
            m = member_near(runs[task], g, 0)
            color = gain_color(g)
            ranks = np.arange(1, 41)
            ax_dw.plot(ranks, ds.sv_final_dw.values[m, :40], color=color, label=f"g = {g:g}")
            ax_w.plot(ranks, ds.sv_w.values[m, :40], color=color)
        ax_dw.set(ylabel="SVs of ΔW", title=TASK_NAMES[task])
        ax_w.set(ylabel="SVs of W", xlabel="rank")
        ax_dw.legend(frameon=False)
        for row, g in enumerate(gains, start=2):
            m = member_near(runs[task], g, 0)
            pairs = [("ΔW", ds.eig_dw.values[m])] + ([("W", ds.eig_w.values[m])] if g > 0 else [])
            for c, (name, ev) in enumerate(pairs):
                ax = fig.add_subplot(sub[row, c])
                ax.scatter(ev.real, ev.imag, s=3, color=gain_color(g))
                ax.plot(g * np.cos(theta), g * np.sin(theta), color="0.5", lw=0.8)
                ax.axvline(1.0, color="0.3", ls="--", lw=0.8)
                ax.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), aspect="equal", title=f"{name}, g = {g:g}",
                       xlabel="Re λ", ylabel="Im λ")
                ax.tick_params(labelsize=6)
    caption = """
Fig S2. Spectra of sample 0 at g = 0, 0.9, 1.8 (nearest available gains). Top: the 40 largest singular
values of ΔW and of W. Bottom: eigenvalues of ΔW (left) and W (right; for g = 0, W = ΔW) in the complex
plane, with the circle of radius g that holds the bulk of W0's eigenvalues and a dashed line at Re λ = 1.
"""
    return fig, caption


# ----------------------------------------------------------------------------------- E2: Fig S1
def figS1(runs: dict[str, Run], min_samples: int = 3):
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
            color = gain_color(g)
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
