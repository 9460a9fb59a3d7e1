"""The dynamics figure of a run: per g (first seed) and variant, the trajectories and fixed
points projected on dW's top two left singular vectors; stable filled, unstable open."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def figure(run, path: str | Path, trials: int = 8) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from randstruct.dynamics.coordinates import dw_directions, initial_states

    ds = run.data
    ens = run.ensemble(dtype=torch.float64)
    seed = json.loads(ds.fp_n_iters.attrs["analysis"])["seed"]  # the trials the search started from
    _, traj = initial_states(ens, run.task(), 1, seed, trials)
    u, _, _ = dw_directions(ens, 2)
    gs = np.unique(ds.g.values)
    variants = [str(v) for v in ds.variant.values]
    fig, axes = plt.subplots(len(gs), len(variants), figsize=(3.2 * len(variants), 2.8 * len(gs)), squeeze=False)
    for i, g in enumerate(gs):
        m = int(np.flatnonzero(ds.g.values == g)[0])
        if u.shape[-1] < 2:
            continue
        proj = (traj[m] @ u[m]).numpy()
        for j, v in enumerate(variants):
            ax = axes[i, j]
            if v == "trunc" and ds.fp_trunc_rank.values[m] < 0:
                ax.text(0.5, 0.5, "not searched: no functional rank\n(randstruct analyze, or --trunc-rank R)",
                        ha="center", va="center", fontsize=8, color="0.4", transform=ax.transAxes)
                ax.set_title(f"g = {g:g}, {v} (n/a)", fontsize=9)
                ax.set_axis_off()
                continue
            for t in proj[:trials]:
                ax.plot(t[:, 0], t[:, 1], color="0.75", lw=0.6)
            c = ds.fp_coord_left.sel(variant=v).values[m]
            st = ds.fp_is_stable.sel(variant=v).values[m]
            ax.scatter(c[st == 1, 0], c[st == 1, 1], s=30, c="k", label="stable", zorder=3)
            ax.scatter(c[st == 0, 0], c[st == 0, 1], s=30, facecolors="none", edgecolors="r", label="unstable", zorder=3)
            rank = f", r = {int(ds.fp_trunc_rank.values[m])}" if v == "trunc" else ""
            ax.set_title(f"g = {g:g}, {v}{rank}", fontsize=9)
            ax.set_xlabel("u1 . x", fontsize=8)
            ax.set_ylabel("u2 . x", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{ds.attrs.get('task')}: fixed points on dW's top two left singular vectors "
                 "(W, W0 + dW_r, shuffled W0 + dW)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
