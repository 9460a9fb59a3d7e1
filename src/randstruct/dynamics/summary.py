"""Per-g summary of a run's stored dynamics (mean over seeds), as ``randstruct info`` and
``randstruct dynamics`` print it."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr


def dynamics_table(ds: xr.Dataset) -> list[dict]:
    """One row per (g, variant): mean stable / unstable fixed-point counts, final outlier count,
    and the mean |cos| of dW's top left and right singular vectors with B^T w and B m (best channel)."""
    rows = []
    left = ds.align_left.isel(dyn_epoch=-1, dw_dir=0)
    right = ds.align_right.isel(dyn_epoch=-1, dw_dir=0)
    refs = [str(r) for r in ds.ref.values]
    bt = [r for r in refs if r.startswith("Bt_out")]
    bm = [r for r in refs if r.startswith("B_in")]
    searched = ds.fp_trunc_rank.values >= 0  # the truncated variant of a network without a rank r: no search
    for g in np.unique(ds.g.values):
        nets = np.flatnonzero(ds.g.values == g)
        for v in ds.variant.values:
            these = nets[searched[nets]] if v == "trunc" else nets
            stable = ds.fp_n_stable.sel(variant=v).values[these].astype(float)
            count = ds.fp_count.sel(variant=v).values[these].astype(float)
            rows.append({"g": float(g), "variant": str(v), "nets": int(these.size),
                         "stable": float(stable.mean()) if these.size else np.nan,
                         "unstable": float((count - stable).mean()) if these.size else np.nan,
                         "outliers": float(ds.eig_outlier_count.isel(dyn_epoch=-1).values[nets].mean()),
                         "cos_u1_Btw": float(left.sel(ref=bt).max("ref").values[nets].mean()),
                         "cos_v1_Bm": float(right.sel(ref=bm).max("ref").values[nets].mean())})
    return rows


def _count(x: float, width: int) -> str:
    return f"{x:{width}.2f}" if np.isfinite(x) else f"{'n/a':>{width}s}"


def format_dynamics(ds: xr.Dataset) -> str:
    rows = dynamics_table(ds)
    head = f"{'g':>5s} {'variant':>8s} {'stable':>7s} {'unstable':>8s} {'outliers':>8s} {'cos(u1,B^T w)':>13s} {'cos(v1,B m)':>11s}"
    lines = [head] + [f"{r['g']:5g} {r['variant']:>8s} {_count(r['stable'], 7)} {_count(r['unstable'], 8)} "
                      f"{r['outliers']:8.2f} {r['cos_u1_Btw']:13.3f} {r['cos_v1_Bm']:11.3f}" for r in rows]
    ranks = ds.fp_trunc_rank.values
    r_text = (f"r = {int(ranks[0])}" if (ranks == ranks[0]).all() and ranks[0] >= 0 and _asked(ds)
              else "r: functional rank; n/a where no network has one (not converged, or not analysed: "
                   "randstruct analyze, or pick r with --trunc-rank)")
    return "\n".join(lines + [f"fixed points per network (mean over seeds); variants: w = W, trunc = W0 + dW_r "
                              f"({r_text}), shuffle = P(W0) + dW; outliers and cosines at the final W"])


def _asked(ds: xr.Dataset) -> bool:
    """Whether the stored search used one rank for every network (--trunc-rank)."""
    try:
        return isinstance(json.loads(ds.fp_trunc_rank.attrs["analysis"]).get("trunc_rank"), int)
    except (KeyError, ValueError, AttributeError):
        return False
