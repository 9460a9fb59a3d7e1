"""The Newton phase of the fixed-point search (dynamics/fixed_points.py): damped Newton steps on
the batched Jacobians, grouped by member so that no state copies its W.

J is factorised in float32 (on a CPU through LAPACK in place, one matrix at a time; on a GPU in
one batched call) and every solve is refined once against the exact float64 products
J v = -v + W (phi' * v); a factorisation is kept (a chord step) while full steps cut q a
hundredfold; a singular J gets the Cauchy step.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import get_lapack_funcs

from randstruct.dynamics.jacobians import dphi, flow, phi

MAX_HALVINGS = 10
CHORD = 1e-2  # keep a factorisation while a full step multiplies q by at most this


def member_groups(ei: torch.Tensor, e: int) -> list[tuple[int, torch.Tensor]]:
    """(member, positions in ``ei``) for every member that has states."""
    order = torch.argsort(ei, stable=True)
    counts = torch.bincount(ei, minlength=e).tolist()
    out, start = [], 0
    for m, c in enumerate(counts):
        if c:
            out.append((m, order[start:start + c]))
        start += c
    return out


def times_wt(v: torch.Tensor, groups, wrec: torch.Tensor) -> torch.Tensor:
    """Row s of ``v`` times W_m^T for its member m: W v for column vectors, one product per member."""
    out = torch.empty_like(v)
    for m, idx in groups:
        out[idx] = v[idx] @ wrec[m].T
    return out


def grouped_flow(x, c, groups, wrec, nonlinearity):
    """F = -x + W phi(x) + c for rows ``x`` (S, N) grouped by member (``groups`` of :func:`member_groups`)."""
    return times_wt(phi(x, nonlinearity), groups, wrec) + c - x


def jacobian_times(v, d, groups, wrec):
    """J v = -v + W (phi' * v) per row, with ``d`` = phi'(x), without forming J."""
    return times_wt(v * d, groups, wrec) - v


def polish(x, f, q, const, ei, wrec, nonlinearity, tol_q, tol_dq, iters):
    """Newton phase for states ``x`` (S, N), their flows ``f`` and ``q``, of members ``ei`` with
    drives ``const`` (S, N).

    Returns (x, F, q, dq, Newton steps per state). States that stop leave the working arrays, so
    the factorisations kept for chord steps are those of running states only.
    """
    s, n = x.shape
    e = wrec.shape[0]
    low = torch.float32 if x.dtype == torch.float64 else x.dtype
    wt_low = wrec.transpose(1, 2).to(low).contiguous()
    out_x, out_f, out_q = x.clone(), f.clone(), q.clone()
    out_dq = torch.zeros(s, dtype=x.dtype, device=x.device)
    steps = torch.zeros(s, dtype=torch.int64, device=x.device)
    pos = torch.arange(s, device=x.device)  # rows of the working arrays in the output
    c = const
    # LU factors stored transposed: lut.mT is the column-major batch LAPACK works on, so solves
    # do not copy it (a copy of the whole batch made each solve ~8x slower)
    # (allocated once: fresh large allocations cost page faults comparable to the O(N^2) work)
    buffers = [torch.empty(s, n, n, dtype=low, device=x.device) for _ in range(3)]
    lut, spare, work = buffers
    piv = torch.empty(s, n, dtype=torch.int32, device=x.device)
    fresh = torch.ones(s, dtype=torch.bool, device=x.device)
    for _ in range(iters):
        if not len(pos):
            break
        groups = member_groups(ei, e)
        d = dphi(x, nonlinearity)
        regular = factorise(lut, piv, fresh, ei, wt_low, d, e, work)
        dx = newton_step(lut, piv, f, d, groups, wrec)
        bad = ~(regular & torch.isfinite(dx).all(-1))
        if bool(bad.any()):
            dx[bad] = cauchy_step(f[bad], d[bad], ei[bad], wrec, e)
        x_new, f_new, q_new, full = line_search(x, dx, q, c, ei, wrec, nonlinearity, e)
        failed = ~(q_new < q)
        dq = torch.where(failed, torch.zeros_like(q), q - q_new)
        chord = full & ~failed & (q_new <= CHORD * q)
        x, f = torch.where(failed[:, None], x, x_new), torch.where(failed[:, None], f, f_new)
        q = torch.where(failed, q, q_new)
        steps[pos] += 1
        stop = (q < tol_q) | (fresh & (failed | (dq < tol_dq)))
        fresh = ~chord
        out_x[pos], out_f[pos], out_q[pos], out_dq[pos] = x, f, q, dq
        if bool(stop.any()):
            keep = ~stop
            pos, x, f, q, c, ei, fresh = pos[keep], x[keep], f[keep], q[keep], c[keep], ei[keep], fresh[keep]
            kept = keep.nonzero()[:, 0]
            lut, spare = torch.index_select(lut, 0, kept, out=spare[:len(kept)]), lut
            piv = piv[keep]
    return out_x, out_f, out_q, out_dq, steps


def factorise(lut, piv, fresh, ei, wt_low, d, e, work) -> torch.Tensor:
    """LU factors (in place, transposed) of J = -I + W diag(d) for the ``fresh`` rows; True where
    J is regular. ``work`` is scratch of at least lut's shape."""
    regular = torch.ones(len(ei), dtype=torch.bool, device=lut.device)
    rows = fresh.nonzero()[:, 0]
    d_low = d.to(wt_low.dtype)
    for m, idx in member_groups(ei[rows], e):
        r = rows[idx]
        jt = torch.mul(d_low[r][:, :, None], wt_low[m], out=work[:len(r)])  # J^T = diag(d) W^T - I:
        jt.diagonal(dim1=1, dim2=2).sub_(1)  # row-major J^T is column-major J, as LAPACK wants it
        pivots, info = lu_in_place(jt)
        lut[r], piv[r] = jt, pivots
        regular[r] = info == 0
    return regular


def lu_in_place(jt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Overwrite ``jt`` (S, N, N), holding J^T, with the transposed LU factors of J.

    On the CPU through SciPy's LAPACK one matrix at a time: its OpenBLAS factorises a 256 x 256
    float32 matrix in half the time of the batched torch call (MKL) on this project's AMD machine.
    Returns LAPACK's 1-based pivots (int32) and info (> 0: J singular).
    """
    if jt.device.type != "cpu":
        return batched_lu_in_place(jt)
    s, n, _ = jt.shape
    arr = jt.numpy()
    (getrf,) = get_lapack_funcs(("getrf",), (arr,))
    pivots, info = np.empty((s, n), np.int32), np.empty(s, np.int32)
    for i in range(s):
        a = arr[i].T  # Fortran-ordered J: factorised where it lies
        lu, p, info[i] = getrf(a, overwrite_a=True)
        if not np.shares_memory(lu, a):
            a[...] = lu
        pivots[i] = p + 1
    return torch.from_numpy(pivots), torch.from_numpy(info)


def batched_lu_in_place(jt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`lu_in_place` as one batched torch call (GPUs)."""
    s, n, _ = jt.shape
    pivots = torch.empty(s, n, dtype=torch.int32, device=jt.device)
    info = torch.empty(s, dtype=torch.int32, device=jt.device)
    torch.linalg.lu_factor_ex(jt.mT, out=(jt.mT, pivots, info))
    return pivots, info


def newton_step(lut, piv, f, d, groups, wrec) -> torch.Tensor:
    """dx with J dx = -F from the low-precision factors, refined once with exact J products."""
    def solve(rhs):
        return torch.linalg.lu_solve(lut.mT, piv, rhs.to(lut.dtype)[..., None])[..., 0].to(f.dtype)

    dx = solve(-f)
    residual = -f - jacobian_times(dx, d, groups, wrec)
    return dx + solve(residual)


def cauchy_step(f, d, ei, wrec, e) -> torch.Tensor:
    """Where J is singular: the steepest-descent step of q of the length that minimises the linear model."""
    groups = member_groups(ei, e)
    grad = times_wt(f, groups, wrec.mT) * d - f  # J^T F
    jg = jacobian_times(grad, d, groups, wrec)
    scale = (grad * grad).sum(-1) / (jg * jg).sum(-1).clamp_min(torch.finfo(f.dtype).tiny)
    return -scale[:, None] * grad


def line_search(x, dx, q, c, ei, wrec, nonlinearity, e):
    """x + a dx with a = 1, 1/2, ... (MAX_HALVINGS halvings) until q decreases. Returns the last
    trial of each row (x, F, q; q >= the old q where none helped) and whether the full step was taken."""
    x_new, f_new, q_new = x.clone(), torch.empty_like(x), torch.full_like(q, float("inf"))
    alpha = torch.ones_like(q)
    pending = torch.arange(len(q), device=x.device)
    for _ in range(MAX_HALVINGS + 1):
        xt = x[pending] + alpha[pending, None] * dx[pending]
        ft = grouped_flow(xt, c[pending], member_groups(ei[pending], e), wrec, nonlinearity)
        qt = 0.5 * (ft * ft).sum(-1)
        x_new[pending], f_new[pending], q_new[pending] = xt, ft, qt
        pending = pending[~(qt < q[pending])]
        if not len(pending):
            break
        alpha[pending] /= 2
    return x_new, f_new, q_new, alpha == 1


