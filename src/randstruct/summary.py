"""Per-g summaries of a run (mean and sd over seeds), as printed by ``randstruct info``."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

N_TOP = 3


def per_network(ds: xr.Dataset) -> xr.Dataset:
    """Scalar descriptors of every network: final loss, ||dW||_F, top singular values of dW."""
    dw = torch.as_tensor(ds.w.values - ds.w0.values)
    sv = torch.linalg.svdvals(dw).numpy()
    top = min(N_TOP, sv.shape[-1])
    return xr.Dataset(
        {
            "final_loss": ("net", ds.loss.isel(epoch=-1).values),
            "norm_dw": ("net", np.sqrt((sv**2).sum(axis=-1))),
            "sv_top": (("net", "sv"), sv[:, :top]),
            "diverged": ("net", ds.diverged_epoch.values >= 0),
        },
        coords={"net": ds.net.values, "g": ("net", ds.g.values), "sv": np.arange(1, top + 1)},
    )


def summarize(run) -> xr.Dataset:
    """Mean and sd over seeds of :func:`per_network`, one row per g (diverged networks excluded)."""
    nets = per_network(run.data)
    ok = nets.where(~nets.diverged)
    grouped = ok.drop_vars("diverged").groupby("g")
    out = grouped.mean(skipna=True).rename({k: f"{k}_mean" for k in ("final_loss", "norm_dw", "sv_top")})
    sd = grouped.std(skipna=True).rename({k: f"{k}_sd" for k in ("final_loss", "norm_dw", "sv_top")})
    counts = nets.diverged.groupby("g")
    return xr.merge([out, sd, counts.count().rename("n_nets"), counts.sum().rename("n_diverged")])


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.3g} ± {sd:.2g}" if np.isfinite(mean) else "n/a"


def format_table(run, summary: xr.Dataset) -> str:
    """A plain-text table, one line per g."""
    attrs = run.data.attrs
    n_epochs = run.data.sizes["epoch"]
    head = [f"run {run.path}: task {attrs['task']}, N = {attrs['N']}, {attrs['nonlinearity']}, "
            f"{run.data.sizes['net']} networks, {n_epochs} epochs, trained in {attrs['train_wall_time_s']:.1f} s"]
    cols = ["g", "nets", "final loss", "||dW||_F"] + [f"s{i}(dW)" for i in summary.sv.values] + ["diverged"]
    rows = []
    for g in summary.g.values:
        r = summary.sel(g=g)
        rows.append([f"{g:g}", str(int(r.n_nets)), _pm(float(r.final_loss_mean), float(r.final_loss_sd)),
                     _pm(float(r.norm_dw_mean), float(r.norm_dw_sd))]
                    + [_pm(float(r.sv_top_mean.sel(sv=i)), float(r.sv_top_sd.sel(sv=i))) for i in summary.sv.values]
                    + [str(int(r.n_diverged))])
    widths = [max(len(c), *(len(row[j]) for row in rows)) for j, c in enumerate(cols)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join(head + ["", line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]
                     + ["", "mean ± sd over seeds (population sd); diverged networks are excluded"])
