"""The sweep's stored analyses gathered into one labelled table, what the figures and the claims
read: an xarray Dataset over (task, g, readout, seed), and (task, g, readout, pair) for the
across-seed dissimilarity."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import xarray as xr

from randstruct.analysis.evaluation import eval_batch
from randstruct.paper.oblique2024.experiments import SCENARIOS, TASKS
from randstruct.runs import Run

PER_NET = {  # stored variable -> table name, with the per-vector and per-unit normalisations below
    "align_rho": "rho",
    "align_dim_x90": "dim_x90",
    "align_dim_fit90": "dim_fit90",
    "align_pulse_readout": "pulse_readout",
    "align_pulse_random": "pulse_random",
    "noise_var_readout": "noise_readout",
    "noise_var_pc": "noise_pc",
    "noise_var_random": "noise_random",
    "noise_compression": "noise_compression",
}
GS = tuple(sorted({g for g, _ in SCENARIOS}))
READOUTS = ("small", "large")
LAST = 20


def table(runs: dict[str, Run]) -> xr.Dataset:
    """Every measure per (task, g, readout, seed); NaN where a run or variable is absent.
    ``norm_wo``: RMS norm of one readout column (||W_out||_F / sqrt(n_out), the paper's ||w_out||);
    ``norm_x``: the state's norm, root mean square over samples (the paper's ||x||: sqrt(N) x the
    RMS per unit, as its plots scale it); ``pulse_pc``: first leading component;
    ``loss``: final training loss (mean of the last ``LAST`` steps: one noisy batch each) over the
    loss of a zero output on the member's evaluation trials; ``dissimilarity``: Procrustes angle (rad) of each pair of seeds."""
    seeds = max((len(r.spec.seeds) for r in runs.values()), default=0)
    pairs = list(combinations(range(seeds), 2))
    shape = (len(TASKS), len(GS), len(READOUTS), seeds)
    names = list(PER_NET.values()) + ["norm_wo", "norm_x", "pulse_pc", "loss"]
    out = {k: np.full(shape, np.nan) for k in names}
    dis = np.full(shape[:3] + (len(pairs),), np.nan)
    curves = {k: np.full(shape + (30,), np.nan) for k in ("var_explained", "fit_r2")}
    tasks = {p.task: i for i, p in enumerate(TASKS.values())}
    for run in runs.values():
        ds, spec = run.data, run.spec
        r = READOUTS.index(spec.readout)
        i = tasks[spec.task]
        g = [GS.index(round(float(v), 10)) for v in ds.g.values]
        sd = [list(spec.seeds).index(int(v)) for v in ds.seed.values]
        at = (np.full(len(g), i), np.array(g), np.full(len(g), r), np.array(sd))
        for var, name in PER_NET.items():
            if var in ds:
                out[name][at] = ds[var].values
        if "align_norm_wo" in ds:
            out["norm_wo"][at] = ds.align_norm_wo.values / np.sqrt(ds.sizes["channel_out"])
            out["norm_x"][at] = ds.align_norm_activity.values
            out["pulse_pc"][at] = ds.align_pulse_pc.values[:, 0]
            k = min(30, ds.sizes["pc"])
            for key, var in (("var_explained", "align_var_explained"), ("fit_r2", "align_fit_r2")):
                curves[key][at + (slice(0, k),)] = ds[var].values[:, :k]
        out["loss"][at] = ds.loss.values[:, -LAST:].mean(1) / _zero_output_loss(run)
        if "sim_procrustes" in ds:
            d = ds.sim_procrustes.values
            for gi in set(g):
                members = {sd[e]: e for e in range(len(g)) if g[e] == gi}
                for p, (a, b) in enumerate(pairs):
                    if a in members and b in members:
                        dis[i, gi, r, p] = d[members[a], members[b]]
    coords = {"task": list(TASKS), "g": list(GS), "readout": list(READOUTS), "seed": np.arange(seeds)}
    data = {k: (("task", "g", "readout", "seed"), v) for k, v in out.items()}
    data["dissimilarity"] = (("task", "g", "readout", "pair"), dis)
    data.update({k: (("task", "g", "readout", "seed", "pc"), v) for k, v in curves.items()})
    return xr.Dataset(data, coords={**coords, "pair": np.arange(len(pairs)), "pc": np.arange(1, 31),
                                    "label": ("task", [p.label for p in TASKS.values()])})


def _zero_output_loss(run: Run) -> float:
    """The task loss (1/2 mean masked squared error) of a network that outputs zero, on its
    evaluation trials: what a loss is measured against."""
    task = run.task()
    b = eval_batch(task, int(run.spec.seeds[0]), float(run.spec.g[0]), 32)
    return float(0.5 * (b.mask * b.targets ** 2).sum() / max(b.mask.sum(), 1))
