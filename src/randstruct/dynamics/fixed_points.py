"""Fixed points of every member of an ensemble in one batched search.

q(x) = |F(x)|^2 / 2 is minimised from K initial states per member, all (member, state) pairs at
once, in two phases:

1. ``first_order_iters`` Adam steps (the method of FixedPointFinder, Golub & Sussillo 2018, there
   run one network at a time), in float32: a warm start that only has to bring states near a
   root, so it runs at twice the float64 speed; a state freezes once q or its change is below the
   tolerances in float32.
2. Newton steps x <- x + a dx in the input's precision, dx = -J^-1 F with the batched Jacobians
   J = -I + W diag(phi'(x)), ``a`` halved (at most MAX_HALVINGS times) until q decreases. -J^-1 F
   is a descent direction of q wherever J is regular (grad q . dx = -|F|^2), so the polish cannot
   climb. J is factorised in float32 (the O(N^3) cost; 1.5x faster than float64 here) and each solve is
   refined once against the exact products J v = -v + W (phi' * v), which makes the step as good
   as a float64 one wherever cond(J) << 1e7. A factorisation is kept for the next step (a chord
   step, O(N^2)) while full steps cut q a hundredfold. A state stops when q < tol_q, or when a
   step from a fresh factorisation cannot decrease q (within 2^-MAX_HALVINGS) or decreases it by
   less than tol_dq: it sits where Newton has no descent left (a slow point, or outside Newton's
   reach). At most NEWTON_ITERS Newton steps are taken: a root in Newton's reach converges in
   fewer (quadratically); states still going after that are chaotic wanderers that plain Adam
   does not converge either (docs/dynamics.md).

Every state's path is its own: batched results equal one-by-one results. Matrix products are
grouped by member (one product over that member's states), so no state copies its W.

Afterwards, per member and input condition: fixed points farther than
``outlier_distance_scale`` mean distances (floored at the states' mean norm) from the initial
states' centroid are dropped and
duplicates (all |x_i - y_i| < tol_unique) are merged, keeping the lowest q. Field names and
tolerance defaults follow FixedPointFinder so results move between the tools; q and F refer to
the continuous flow (FixedPointFinder's F(x) - x of a discrete map is dt times this F).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from randstruct.engine.spectra import _lexsort_desc
from randstruct.dynamics.jacobians import flow, jacobian, q_and_grad
from randstruct.engine.kernels import check_nonlinearity
from randstruct.dynamics.newton import CHORD, MAX_HALVINGS, polish
from randstruct.errors import UserInputError

DEFAULTS = {"tol_q": 1e-12, "tol_dq": 1e-20, "max_iters": 5000, "tol_unique": 1e-3,
            "outlier_distance_scale": 10.0}
FIRST_ORDER_ITERS = 100
FIRST_ORDER_DTYPE = torch.float32
LR = 0.05
ADAM = {"betas": (0.9, 0.999), "eps": 0.01}  # FixedPointFinder's Adam epsilon
NEWTON_ITERS = 12
CHUNK_BYTES = 1 << 28
# recorded with stored results, so results of an earlier search method are recomputed
METHOD = (f"Adam in float32, then <= {NEWTON_ITERS} Newton steps (float32 LU refined in float64, chord "
          f"steps while q falls {1 / CHORD:g}x, <= {MAX_HALVINGS} halvings)")


@dataclass
class Search:
    """Raw results, one per initial state: arrays (E, K, ...) as torch tensors."""

    xstar: torch.Tensor
    F_xstar: torch.Tensor
    qstar: torch.Tensor
    dq: torch.Tensor
    n_iters: torch.Tensor
    n_first_order: int = 0
    n_newton: int = 0


def check_options(tol_q: float, tol_dq: float, max_iters: int, first_order_iters: int) -> None:
    if not (tol_q > 0 and tol_dq >= 0):
        raise UserInputError(f"tol_q must be > 0 and tol_dq >= 0, got {tol_q} and {tol_dq}")
    for name, value, low in (("max_iters", max_iters, 1), ("first_order_iters", first_order_iters, 0)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise UserInputError(f"{name} must be an integer >= {low}, got {value}")


def iteration_bound(max_iters: int, first_order_iters: int) -> int:
    """The most iterations a state can take: the first-order phase, then at most NEWTON_ITERS
    Newton steps, within ``max_iters`` (what a result records, not the cap asked for)."""
    first = min(first_order_iters, max_iters)
    return first + min(max_iters - first, NEWTON_ITERS)


def search(wrec: torch.Tensor, const: torch.Tensor, x_init: torch.Tensor, nonlinearity: str = "tanh",
           tol_q: float = DEFAULTS["tol_q"], tol_dq: float = DEFAULTS["tol_dq"],
           max_iters: int = DEFAULTS["max_iters"], first_order_iters: int = FIRST_ORDER_ITERS,
           lr: float = LR, chunk_bytes: int = CHUNK_BYTES) -> Search:
    """Minimise q from ``x_init`` (E, K, N) for members ``wrec`` (E, N, N) with drives ``const`` (E, K, N)."""
    check_nonlinearity(nonlinearity)
    check_options(tol_q, tol_dq, max_iters, first_order_iters)
    first = min(first_order_iters, max_iters)
    x, n_iters, dq, t = first_order(wrec, const, x_init, nonlinearity, tol_q, tol_dq, first, lr)
    f = flow(x, wrec, const, nonlinearity)
    q = 0.5 * (f * f).sum(-1)
    todo = (q >= tol_q).nonzero()
    newton = 0
    if todo.shape[0] and max_iters > first:
        ei, ki = todo.unbind(1)
        n = x.shape[-1]
        chunk = max(1, int(chunk_bytes // (4 * n * n * 3)))  # float32 factors (two) and Jacobians
        for start in range(0, len(ei), chunk):
            e_c, k_c = ei[start:start + chunk], ki[start:start + chunk]
            out = polish(x[e_c, k_c], f[e_c, k_c], q[e_c, k_c], const[e_c, k_c], e_c, wrec, nonlinearity,
                         tol_q, tol_dq, iteration_bound(max_iters, first_order_iters) - first)
            x[e_c, k_c], f[e_c, k_c], q[e_c, k_c], dq[e_c, k_c] = out[:4]
            n_iters[e_c, k_c] += out[4]
            newton = max(newton, int(out[4].max()))
    return Search(x, f, q, dq, n_iters, t, newton)


def first_order(wrec, const, x_init, nonlinearity, tol_q, tol_dq, iters, lr):
    """The Adam phase in FIRST_ORDER_DTYPE. Returns (x in the input dtype, iterations per state,
    last |dq| per state, steps taken)."""
    dtype = x_init.dtype
    low = FIRST_ORDER_DTYPE if dtype == torch.float64 else dtype
    x, w, c = x_init.to(low, copy=True), wrec.to(low), const.to(low)
    e, k, _ = x.shape
    n_iters = torch.zeros(e, k, dtype=torch.int64, device=x.device)
    q, grad, _ = q_and_grad(x, w, c, nonlinearity)
    dq = torch.full_like(q, float("inf"))
    active = q >= tol_q
    b1, b2 = ADAM["betas"]
    m1, m2 = torch.zeros_like(x), torch.zeros_like(x)
    t = 0
    for t in range(1, iters + 1):
        if not bool(active.any()):
            t -= 1
            break
        m1.mul_(b1).add_(grad, alpha=1 - b1)
        m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        step = (m1 / (1 - b1 ** t)) / ((m2 / (1 - b2 ** t)).sqrt_().add_(ADAM["eps"]))
        x.sub_(step.mul_(lr * active[..., None]))
        n_iters += active
        q_new, grad, _ = q_and_grad(x, w, c, nonlinearity)
        dq = torch.where(active, (q - q_new).abs(), dq)
        q = torch.where(active, q_new, q)
        active &= (q >= tol_q) & (dq >= tol_dq)
    return x.to(dtype), n_iters, dq.to(dtype), t


@dataclass
class FixedPoints:
    """Unique fixed points per member, padded along a fixed-point axis P with NaN (ints: -1).

    Arrays are numpy: xstar, F_xstar (E, P, N); qstar, dq, n_iters, is_stable, cond_id (E, P);
    eigval_J_xstar (E, P, N) sorted by real part, descending; J_xstar and eigvec_J_xstar
    (E, P, N, N) only if asked for; count (E,) the number of fixed points of each member.
    """

    xstar: np.ndarray
    F_xstar: np.ndarray
    qstar: np.ndarray
    dq: np.ndarray
    n_iters: np.ndarray
    eigval_J_xstar: np.ndarray
    is_stable: np.ndarray
    cond_id: np.ndarray
    count: np.ndarray
    J_xstar: np.ndarray | None = None
    eigvec_J_xstar: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def unique_indices(x: np.ndarray, q: np.ndarray, tol_unique: float) -> np.ndarray:
    """Indices of states kept after merging those within ``tol_unique`` (max-abs) of a kept one of lower q."""
    order = np.argsort(q, kind="stable")
    xs = torch.as_tensor(x[order])
    close = (torch.cdist(xs, xs, p=float("inf")) < tol_unique).numpy()
    kept = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        kept[i] = not (close[i] & kept).any()
    return order[kept]


def select(res: Search, x_init: torch.Tensor, cond_id: np.ndarray, tol_unique: float,
           outlier_distance_scale: float, tol_q: float | None = None,
           valid: np.ndarray | None = None) -> list[np.ndarray]:
    """Per member: indices into K of the kept fixed points (distance outliers out, duplicates merged;
    with ``tol_q`` also the slow points, states whose q stayed >= tol_q; states not ``valid`` (E, K)
    neither count nor shape the outlier distance)."""
    x = res.xstar.double().cpu().numpy()
    xi = x_init.double().cpu().numpy()
    q = res.qstar.double().cpu().numpy()
    valid = np.ones(q.shape, bool) if valid is None else valid
    out = []
    for e in range(x.shape[0]):
        if not valid[e].any():
            out.append(np.zeros(0, np.int64))
            continue
        starts = xi[e][valid[e]]
        centroid = starts.mean(0)
        # FixedPointFinder's scale is the mean distance to the centroid; initial states bunched on one
        # plateau (a deterministic task) make it ~0, so it is floored at their mean norm
        scale = max(np.linalg.norm(starts - centroid, axis=1).mean(), np.linalg.norm(starts, axis=1).mean())
        dist = np.linalg.norm(x[e] - centroid, axis=1)
        ok = valid[e] & np.isfinite(q[e]) & (dist <= outlier_distance_scale * max(scale, np.finfo(float).tiny))
        if tol_q is not None:
            ok &= q[e] < tol_q
        picked = []
        for c in np.unique(cond_id[e]):
            idx = np.flatnonzero(ok & (cond_id[e] == c))
            if idx.size:
                picked.append(idx[unique_indices(x[e, idx], q[e, idx], tol_unique)])
        out.append(np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64))
    return out


def sorted_eig(j: torch.Tensor, vectors: bool):
    """Eigenvalues (and eigenvectors) of J, sorted by real part, then imaginary part, descending."""
    if vectors:
        val, vec = torch.linalg.eig(j)
    else:
        val, vec = torch.linalg.eigvals(j), None
    order = _lexsort_desc(val.real, val.imag)
    val = val.gather(-1, order)
    if vec is not None:
        vec = vec.gather(-1, order[..., None, :].expand_as(vec))
    return val, vec


def pack(res: Search, kept: list[np.ndarray], wrec: torch.Tensor, cond_id: np.ndarray, nonlinearity: str,
         keep_jacobians: bool = False) -> FixedPoints:
    """Gather the kept fixed points into padded arrays and decompose their Jacobians."""
    e, _, n = res.xstar.shape
    p = max([len(k) for k in kept] + [1])
    nan = np.nan

    def padded(shape, fill=nan, dtype=float):
        return np.full((e, p) + shape, fill, dtype=dtype)

    out = FixedPoints(
        xstar=padded((n,)), F_xstar=padded((n,)), qstar=padded(()), dq=padded(()), n_iters=padded((), -1, np.int64),
        eigval_J_xstar=padded((n,), nan + 0j, complex), is_stable=padded(()), cond_id=padded((), -1, np.int64),
        count=np.array([len(k) for k in kept], np.int64),
        J_xstar=padded((n, n)) if keep_jacobians else None,
        eigvec_J_xstar=padded((n, n), nan + 0j, complex) if keep_jacobians else None)
    for m, idx in enumerate(kept):
        if not len(idx):
            continue
        t = torch.as_tensor(idx, device=res.xstar.device)
        xs = res.xstar[m].index_select(0, t)
        j = jacobian(xs, wrec[m].expand(len(idx), n, n), nonlinearity)
        val, vec = sorted_eig(j.double(), keep_jacobians)
        s = slice(0, len(idx))
        out.xstar[m, s] = xs.double().cpu().numpy()
        out.F_xstar[m, s] = res.F_xstar[m].index_select(0, t).double().cpu().numpy()
        out.qstar[m, s] = res.qstar[m].index_select(0, t).double().cpu().numpy()
        out.dq[m, s] = res.dq[m].index_select(0, t).double().cpu().numpy()
        out.n_iters[m, s] = res.n_iters[m].index_select(0, t).cpu().numpy()
        out.eigval_J_xstar[m, s] = val.cpu().numpy()
        out.is_stable[m, s] = (val.real < 0).all(-1).cpu().numpy()
        out.cond_id[m, s] = cond_id[m, idx]
        if keep_jacobians:
            out.J_xstar[m, s] = j.double().cpu().numpy()
            out.eigvec_J_xstar[m, s] = vec.cpu().numpy()
    return out


def find_fixed_points(wrec: torch.Tensor, const: torch.Tensor, x_init: torch.Tensor, cond_id: np.ndarray | None = None,
                      nonlinearity: str = "tanh", tol_q: float = DEFAULTS["tol_q"], tol_dq: float = DEFAULTS["tol_dq"],
                      max_iters: int = DEFAULTS["max_iters"], tol_unique: float = DEFAULTS["tol_unique"],
                      outlier_distance_scale: float = DEFAULTS["outlier_distance_scale"],
                      first_order_iters: int = FIRST_ORDER_ITERS, lr: float = LR,
                      keep_jacobians: bool = False, keep_slow: bool = False) -> FixedPoints:
    """The unique fixed points of every member: :func:`search`, then :func:`select` and :func:`pack`.

    ``cond_id`` (E, K) labels the input condition of each initial state (its drive in ``const``);
    duplicates are merged within a condition only. Slow points (q >= tol_q at the end: local minima
    of q, or states that ran out of iterations) are dropped unless ``keep_slow``; FixedPointFinder
    keeps them and leaves the filtering to qstar.
    """
    if not tol_unique > 0 or not outlier_distance_scale > 0:
        raise UserInputError(f"tol_unique and outlier_distance_scale must be > 0, got {tol_unique} and "
                             f"{outlier_distance_scale}")
    e, k, _ = x_init.shape
    cond = np.zeros((e, k), np.int64) if cond_id is None else np.asarray(cond_id, np.int64)
    wrec, const, x_init, valid, skipped = _finite_only(wrec, const, x_init)
    res = search(wrec, const, x_init, nonlinearity, tol_q, tol_dq, max_iters, first_order_iters, lr)
    kept = select(res, x_init, cond, tol_unique, outlier_distance_scale, None if keep_slow else tol_q, valid)
    out = pack(res, kept, wrec, cond, nonlinearity, keep_jacobians)
    out.info = {"method": METHOD, "first_order_iters": res.n_first_order, "newton_iters": res.n_newton,
                "converged": float((res.qstar < tol_q).double()[torch.as_tensor(valid)].mean()) if valid.any()
                else float("nan"), **skipped}
    return out


def _finite_only(wrec, const, x_init):
    """Members with non-finite weights and initial states or drives that are not finite take no part
    (searched from zeros, never kept), so they cannot wipe out the others; a warning says which."""
    good_w = torch.isfinite(wrec).flatten(1).all(1)
    valid = (torch.isfinite(x_init).all(-1) & torch.isfinite(const).all(-1) & good_w[:, None])
    if bool(valid.all()):
        return wrec, const, x_init, valid.cpu().numpy(), {}
    bad_members = (~good_w).nonzero().flatten().tolist()
    bad_states = int((~valid[good_w]).sum())
    warnings.warn(f"fixed points: skipped {len(bad_members)} member(s) with non-finite weights {bad_members} and "
                  f"{bad_states} initial state(s) or drive(s) with non-finite entries; the rest were searched",
                  RuntimeWarning, stacklevel=3)
    zero = torch.zeros((), dtype=wrec.dtype, device=wrec.device)
    wrec = torch.where(good_w[:, None, None], wrec, zero)
    const = torch.where(valid[..., None], const, zero)
    x_init = torch.where(valid[..., None], x_init, zero)
    return wrec, const, x_init, valid.cpu().numpy(), {"skipped_members": bad_members,
                                                      "skipped_initial_states": bad_states}
