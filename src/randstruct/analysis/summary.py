"""Per-g summaries of a run (mean and sd over seeds), as printed by ``randstruct info``."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from randstruct.analysis.grouping import by_g, mean_sd_by_g
from randstruct.engine.options import ModelOptions

N_TOP = 3


ANALYSIS_COLUMNS = {"conv_epoch": "conv. epoch", "functional_rank": "func. rank", "rel_shuffle_loss": "shuffle/L0",
                    "final_eval_accuracy": "eval acc.", "shuffle_accuracy": "shuffle acc.",
                    "functional_rank_accuracy": "f. rank (acc.)", "align_rho": "rho", "align_dim_x90": "D_x,90",
                    "align_dim_fit90": "D_fit,90", "regime_rel_dw": "|dW|/|W0|", "regime_cka_init": "CKA init",
                    "noise_compression": "noise w_out/rand"}
ACCURACY_EPOCHS = 10  # the training accuracy shown averages the last batches: one batch is a few dozen trials


def final_singular_values(ds: xr.Dataset) -> np.ndarray:
    """Singular values of the final dW (net, sv): those ``analyze`` stored (sv_final_dw) when it
    kept them all, else one SVD per network; NaN for a network whose weights are not finite."""
    if "sv_final_dw" in ds and ds.sv_final_dw.shape[-1] == ds.sizes["unit"]:
        return ds.sv_final_dw.values
    dw = ds.w.values - ds.w0.values
    finite = np.isfinite(dw).all(axis=(1, 2))
    sv = np.full(dw.shape[:2], np.nan, dtype=dw.dtype)
    if finite.any():
        sv[finite] = torch.linalg.svdvals(torch.as_tensor(dw[finite])).numpy()
    return sv


def per_network(ds: xr.Dataset) -> xr.Dataset:
    """Scalar descriptors of every network: final loss, ||dW||_F, top singular values of dW, and
    (once ``randstruct analyze`` ran) convergence epoch, functional rank and shuffle loss / L0.
    A convergence epoch or functional rank of -1 (never reached) counts as missing."""
    sv = final_singular_values(ds)
    top = min(N_TOP, sv.shape[-1])
    extra = {}
    for name in ANALYSIS_COLUMNS:
        if name in ds:
            values = ds[name].values.astype(float)
            if values.ndim == 2:  # per shuffle
                values = values.mean(axis=1)
            extra[name] = ("net", np.where(values < 0, np.nan, values))
    if "accuracy" in ds:
        extra["accuracy"] = ("net", np.nanmean(ds.accuracy.values[:, -ACCURACY_EPOCHS:].astype(float), axis=1))
    return xr.Dataset(
        {
            "final_loss": ("net", ds.loss.isel(epoch=-1).values),
            "norm_dw": ("net", ds.norm_dw.values if "norm_dw" in ds else np.sqrt((sv**2).sum(axis=-1))),
            "sv_top": (("net", "sv"), sv[:, :top]),
            "diverged": ("net", ds.diverged_epoch.values >= 0),
            **extra,
        },
        coords={"net": ds.net.values, "g": ("net", ds.g.values), "sv": np.arange(1, top + 1)},
    )


def summarize(run) -> xr.Dataset:
    """Mean and sd over seeds of :func:`per_network`, one row per g (diverged networks excluded)."""
    nets = per_network(run.data)
    g, ok = nets.g.values, ~nets.diverged.values
    out = {}
    for name in (k for k in nets.data_vars if k != "diverged"):
        var = nets[name]
        levels, mean, sd, _ = mean_sd_by_g(g, var.values, include=ok)
        dims = ("g",) + var.dims[1:]
        out[f"{name}_mean"], out[f"{name}_sd"] = (dims, mean), (dims, sd)
    levels, groups = by_g(g, ok)
    out["n_nets"] = ("g", np.array([len(k) for k in groups]))
    out["n_diverged"] = ("g", np.array([int((~k).sum()) for k in groups]))
    return xr.Dataset(out, coords={"g": levels, "sv": nets.sv.values})


def _non_default(values: dict, defaults: dict) -> dict:
    return {k: v for k, v in values.items() if v != defaults[k]}


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.3g} ± {sd:.2g}" if np.isfinite(mean) else "n/a"


def format_table(run, summary: xr.Dataset) -> str:
    """A plain-text table, one line per g."""
    spec, wall = run.spec, run.data.attrs.get("train_wall_time_s")
    head = [f"run {run.path}: task {spec.task}, N = {spec.n}, {spec.nonlinearity}, {run.data.sizes['net']} networks, "
            f"{run.data.sizes['epoch']} epochs" + (f", trained in {wall:.1f} s" if wall is not None else "")]
    changed = {**_non_default(spec.options.to_dict(), ModelOptions().to_dict()),
               **{k: getattr(spec.train, k) for k in ("l2_w", "l2_dw", "l2_rates") if getattr(spec.train, k)}}
    if changed:
        head.append("model options: " + ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                                  for k, v in changed.items()))
    analysed = [k for k in ANALYSIS_COLUMNS if f"{k}_mean" in summary]
    acc = ["accuracy"] if "accuracy_mean" in summary else []
    cols = (["g", "nets", "final loss"] + [f"accuracy (last {ACCURACY_EPOCHS})" for _ in acc] + ["||dW||_F"] + [f"s{i}(dW)" for i in summary.sv.values]
            + [ANALYSIS_COLUMNS[k] for k in analysed] + ["diverged"])
    rows = []
    for g in summary.g.values:
        r = summary.sel(g=g)
        rows.append([f"{g:g}", str(int(r.n_nets)), _pm(float(r.final_loss_mean), float(r.final_loss_sd))]
                    + [_pm(float(r[f"{k}_mean"]), float(r[f"{k}_sd"])) for k in acc]
                    + [_pm(float(r.norm_dw_mean), float(r.norm_dw_sd))]
                    + [_pm(float(r.sv_top_mean.sel(sv=i)), float(r.sv_top_sd.sel(sv=i))) for i in summary.sv.values]
                    + [_pm(float(r[f"{k}_mean"]), float(r[f"{k}_sd"])) for k in analysed]
                    + [str(int(r.n_diverged))])
    widths = [max(len(c), *(len(row[j]) for row in rows)) for j, c in enumerate(cols)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join(head + ["", line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]
                     + ["", "mean ± sd over seeds (population sd); diverged networks are excluded"
                            + ("; conv. epoch and func. rank average the networks that reached them (n/a: none did)"
                               if analysed else
                               "; run 'randstruct analyze' to add convergence, functional rank and shuffle columns")])
