"""Fixed points of every member of an ensemble in one batched search.

q(x) = |F(x)|^2 / 2 is minimised from K initial states per member, all (member, state) pairs at
once: first ``first_order_iters`` Adam steps (the method of FixedPointFinder, Golub & Sussillo
2018, there run one network at a time), then damped Newton steps x <- x - a J^-1 F with the
batched Jacobians J = -I + W diag(phi'(x)), a halved until q decreases. -J^-1 F is a descent
direction of q wherever J is regular (grad q . dx = -|F|^2), so the polish cannot climb; it
converges quadratically where Adam crawls; at most NEWTON_ITERS Newton steps are taken (a state
not converged by then sits near a minimum of q with F != 0, a slow point). Every state stops on its own as soon as
q < tol_q or |dq| < tol_dq, so a state's path does not depend on the others in the batch.

Afterwards, per member and input condition: fixed points farther than
``outlier_distance_scale`` mean distances (floored at the states' mean norm) from the initial
states' centroid are dropped and
duplicates (all |x_i - y_i| < tol_unique) are merged, keeping the lowest q. Field names and
tolerance defaults follow FixedPointFinder so results move between the tools; q and F refer to
the continuous flow (FixedPointFinder's F(x) - x of a discrete map is dt times this F).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from randstruct.engine.spectra import _lexsort_desc
from randstruct.dynamics.jacobians import check_nonlinearity, flow, jacobian, q_and_grad

DEFAULTS = {"tol_q": 1e-12, "tol_dq": 1e-20, "max_iters": 5000, "tol_unique": 1e-3,
            "outlier_distance_scale": 10.0}
FIRST_ORDER_ITERS = 100
LR = 0.05
ADAM = {"betas": (0.9, 0.999), "eps": 0.01}  # FixedPointFinder's Adam epsilon
MAX_HALVINGS = 40
NEWTON_ITERS = 30  # a root in reach converges in < 10 (quadratically); the rest are slow points
CHUNK_BYTES = 1 << 28


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
        raise ValueError(f"tol_q must be > 0 and tol_dq >= 0, got {tol_q} and {tol_dq}")
    for name, value, low in (("max_iters", max_iters, 1), ("first_order_iters", first_order_iters, 0)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value}")


def search(wrec: torch.Tensor, const: torch.Tensor, x_init: torch.Tensor, nonlinearity: str = "tanh",
           tol_q: float = DEFAULTS["tol_q"], tol_dq: float = DEFAULTS["tol_dq"],
           max_iters: int = DEFAULTS["max_iters"], first_order_iters: int = FIRST_ORDER_ITERS,
           lr: float = LR, chunk_bytes: int = CHUNK_BYTES) -> Search:
    """Minimise q from ``x_init`` (E, K, N) for members ``wrec`` (E, N, N) with drives ``const`` (E, K, N)."""
    check_nonlinearity(nonlinearity)
    check_options(tol_q, tol_dq, max_iters, first_order_iters)
    x = x_init.clone()
    e, k, n = x.shape
    active = torch.ones(e, k, dtype=torch.bool, device=x.device)
    n_iters = torch.zeros(e, k, dtype=torch.int64, device=x.device)
    q, grad, f = q_and_grad(x, wrec, const, nonlinearity)
    dq = torch.full_like(q, float("inf"))
    active &= q >= tol_q
    # first-order phase: Adam on every state at once (bias-corrected; frozen states stay put)
    b1, b2 = ADAM["betas"]
    m1, m2 = torch.zeros_like(x), torch.zeros_like(x)
    first = min(first_order_iters, max_iters)
    t = 0
    for t in range(1, first + 1):
        if not bool(active.any()):
            break
        m1.mul_(b1).add_(grad, alpha=1 - b1)
        m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        step = (m1 / (1 - b1 ** t)) / ((m2 / (1 - b2 ** t)).sqrt_().add_(ADAM["eps"]))
        x.sub_(step.mul_(lr * active[..., None]))
        n_iters += active
        q_new, grad, f = q_and_grad(x, wrec, const, nonlinearity)
        dq = torch.where(active, (q - q_new).abs(), dq)
        q = torch.where(active, q_new, q)
        active &= (q >= tol_q) & (dq >= tol_dq)
    # second-order phase: damped Newton on the states still active (solves in memory-bounded chunks)
    item = x.element_size()
    chunk = max(1, int(chunk_bytes // (item * 4 * n * n)))
    newton = 0
    for _ in range(min(max_iters - first, NEWTON_ITERS)):
        pairs = active.nonzero()
        if pairs.shape[0] == 0:
            break
        newton += 1
        ei, ki = pairs.unbind(1)
        dx = torch.empty(len(ei), n, dtype=x.dtype, device=x.device)
        for start in range(0, len(ei), chunk):
            sl = slice(start, start + chunk)
            e_c, k_c = ei[sl], ki[sl]
            step, info = torch.linalg.solve_ex(jacobian(x[e_c, k_c], wrec[e_c], nonlinearity), -f[e_c, k_c])
            good = (info == 0)[:, None] & torch.isfinite(step).all(-1, keepdim=True)
            dx[sl] = torch.where(good, step, -f[e_c, k_c])
        xs, q0 = x[ei, ki], q[ei, ki]
        best_x, best_q, best_f = xs.clone(), q0.clone(), f[ei, ki]
        alpha = torch.ones_like(q0)
        pending = torch.ones_like(q0, dtype=torch.bool)
        for _ in range(MAX_HALVINGS):
            p = pending.nonzero()[:, 0]
            xn = xs[p] + alpha[p, None] * dx[p]
            fn = flow_at(xn, ei[p], ki[p], wrec, const, nonlinearity)
            qn = 0.5 * (fn * fn).sum(-1)
            ok = qn < q0[p]
            hit = p[ok]
            best_x[hit], best_q[hit], best_f[hit] = xn[ok], qn[ok], fn[ok]
            pending[hit] = False
            if not bool(pending.any()):
                break
            alpha[pending] /= 2
        x[ei, ki], q[ei, ki], f[ei, ki] = best_x, best_q, best_f
        dq[ei, ki] = q0 - best_q  # 0 where no step helped: the state stops
        n_iters[ei, ki] += 1
        active &= (q >= tol_q) & (dq >= tol_dq)
    return Search(x, f, q, dq, n_iters, t if first else 0, newton)


def flow_at(xs: torch.Tensor, ei: torch.Tensor, ki: torch.Tensor, wrec: torch.Tensor, const: torch.Tensor,
            nonlinearity: str) -> torch.Tensor:
    """F at states ``xs`` (m, N) of members ``ei`` (drives ``const[ei, ki]``).

    Many states: one matrix product per member over a scattered (E, K, N) copy (compute-bound);
    few: one matrix-vector product per state with its member's W (reads m N^2 numbers).
    """
    e, k, n = const.shape
    if len(ei) * 8 >= e * k:
        full = torch.zeros_like(const)
        full[ei, ki] = xs
        return flow(full, wrec, const, nonlinearity)[ei, ki]
    return flow(xs[:, None], wrec[ei], const[ei, ki][:, None], nonlinearity)[:, 0]


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
           outlier_distance_scale: float, tol_q: float | None = None) -> list[np.ndarray]:
    """Per member: indices into K of the kept fixed points (distance outliers out, duplicates merged;
    with ``tol_q`` also the slow points, states whose q stayed >= tol_q)."""
    x = res.xstar.double().cpu().numpy()
    xi = x_init.double().cpu().numpy()
    q = res.qstar.double().cpu().numpy()
    out = []
    for e in range(x.shape[0]):
        centroid = xi[e].mean(0)
        # FixedPointFinder's scale is the mean distance to the centroid; initial states bunched on one
        # plateau (a deterministic task) make it ~0, so it is floored at their mean norm
        scale = max(np.linalg.norm(xi[e] - centroid, axis=1).mean(), np.linalg.norm(xi[e], axis=1).mean())
        dist = np.linalg.norm(x[e] - centroid, axis=1)
        ok = np.isfinite(q[e]) & (dist <= outlier_distance_scale * max(scale, np.finfo(float).tiny))
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
        raise ValueError(f"tol_unique and outlier_distance_scale must be > 0, got {tol_unique} and "
                         f"{outlier_distance_scale}")
    e, k, _ = x_init.shape
    cond = np.zeros((e, k), np.int64) if cond_id is None else np.asarray(cond_id, np.int64)
    res = search(wrec, const, x_init, nonlinearity, tol_q, tol_dq, max_iters, first_order_iters, lr)
    kept = select(res, x_init, cond, tol_unique, outlier_distance_scale, None if keep_slow else tol_q)
    out = pack(res, kept, wrec, cond, nonlinearity, keep_jacobians)
    out.info = {"first_order_iters": res.n_first_order, "newton_iters": res.n_newton,
                "converged": float((res.qstar < tol_q).double().mean())}
    return out
