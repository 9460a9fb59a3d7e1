"""Per-g summary of a run's stored dynamics (mean over seeds), as ``randstruct info`` and
``randstruct dynamics`` print it."""

from __future__ import annotations

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
    for g in np.unique(ds.g.values):
        nets = np.flatnonzero(ds.g.values == g)
        for v in ds.variant.values:
            stable = ds.fp_n_stable.sel(variant=v).values[nets]
            count = ds.fp_count.sel(variant=v).values[nets]
            rows.append({"g": float(g), "variant": str(v), "stable": float(stable.mean()),
                         "unstable": float((count - stable).mean()),
                         "outliers": float(ds.eig_outlier_count.isel(dyn_epoch=-1).values[nets].mean()),
                         "cos_u1_Btw": float(left.sel(ref=bt).max("ref").values[nets].mean()),
                         "cos_v1_Bm": float(right.sel(ref=bm).max("ref").values[nets].mean())})
    return rows


def format_dynamics(ds: xr.Dataset) -> str:
    rows = dynamics_table(ds)
    head = f"{'g':>5s} {'variant':>8s} {'stable':>7s} {'unstable':>8s} {'outliers':>8s} {'cos(u1,B^T w)':>13s} {'cos(v1,B m)':>11s}"
    lines = [head] + [f"{r['g']:5g} {r['variant']:>8s} {r['stable']:7.2f} {r['unstable']:8.2f} {r['outliers']:8.2f} "
                      f"{r['cos_u1_Btw']:13.3f} {r['cos_v1_Bm']:11.3f}" for r in rows]
    return "\n".join(lines + ["fixed points per network (mean over seeds); variants: w = W, trunc = W0 + dW_r "
                              "(r: functional rank), shuffle = P(W0) + dW; outliers and cosines at the final W"])
