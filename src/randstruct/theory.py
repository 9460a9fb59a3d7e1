"""Closed forms of the linear-RNN learning theory (supplement Sections 4-5, SPEC section T).

Setting: J = W0 with entries N(0, g^2/N), B = (I - J)^-1, unit vectors m, w independent of J,
readout z = w^T (I - W)^-1 m, loss (zhat - z)^2 / 2, gradient flow in learning time tau.
Unless stated otherwise a result holds for N -> infinity and 0 <= g < 1, and the expansions hold
for small effective time x = beta^2 tau. All closed forms broadcast over g, zhat and x with numpy
rules, so a whole (zhat, g, x) grid is evaluated in one call.
"""

from __future__ import annotations

import numpy as np
import scipy.integrate
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

from randstruct.errors import UserInputError

__all__ = [
    "TRACE_KEYS",
    "beta",
    "gamma",
    "trace_limits",
    "draw_network",
    "trace_moments",
    "first_order_quantities",
    "mc_first_order",
    "monte_carlo_check",
    "collapsed_time",
    "learning_rate",
    "readout",
    "loss_from_readout",
    "s_plus",
    "s_minus",
    "tau_star",
    "norm_dw_star",
    "mean_grad_norm",
    "shuffle_loss_ratio",
    "shuffled_readout",
    "theory_curves",
    "exact_flow_g0",
]

Array = NDArray[np.float64]
TRACE_KEYS = ("tr_B", "tr_BBt", "tr_BBBt", "tr_BBtBBt", "tr_BBt3")


def _check_g(g: ArrayLike) -> Array:
    """The theory needs a stable J with a finite resolvent series: 0 <= g < 1."""
    g = np.asarray(g, dtype=float)
    ok = (g >= 0) & (g < 1)
    if not np.all(ok):
        bad = g[~ok] if g.ndim else g
        raise UserInputError(f"g must satisfy 0 <= g < 1 for the linear theory, got g = {bad}")
    return g


def beta(g: ArrayLike) -> Array:
    """beta = 1/(1 - g^2) = Tr(B B^T)/N (eqs. 16, 78); valid for 0 <= g < 1."""
    return 1.0 / (1.0 - _check_g(g) ** 2)


def gamma(g: ArrayLike) -> Array:
    """gamma = Tr(B B^T B B^T)/N = beta^4 (eq. 80, garbled in the OCR; value from SPEC T)."""
    return beta(g) ** 4


def trace_limits(g: ArrayLike) -> dict[str, Array]:
    """N -> infinity limits of the normalised traces of eqs. 77-80 plus Tr((B B^T)^3)/N.

    Keys match `trace_moments`, so a Monte-Carlo draw can be compared entry by entry.
    """
    g = _check_g(g)
    b = beta(g)
    return {
        "tr_B": np.ones_like(b),
        "tr_BBt": b,
        "tr_BBBt": b**2,
        "tr_BBtBBt": b**4,
        "tr_BBt3": b**7 * (1 + 2 * g**2),
    }


def draw_network(N: int, g: float, seed: int) -> tuple[Array, Array, Array]:
    """One draw (J, m, w) of the ensemble: J ~ N(0, g^2/N), m and w independent unit vectors."""
    _check_g(g)
    rng = np.random.default_rng(seed)
    J = rng.normal(0.0, g / np.sqrt(N), size=(N, N))
    m, w = rng.normal(size=(2, N))
    return J, m / np.linalg.norm(m), w / np.linalg.norm(w)


def trace_moments(N: int, g: float, seed: int) -> dict[str, float]:
    """Normalised traces of one finite-N draw, to check `trace_limits` (corrections are O(1/N))."""
    J, _, _ = draw_network(N, g, seed)
    B = np.linalg.solve(np.eye(N) - J, np.eye(N))
    M = B @ B.T
    values = (
        np.trace(B),
        np.trace(M),
        np.sum((B @ B) * B),
        np.sum(M * M),
        np.sum((M @ M) * M),
    )
    return {key: float(v) / N for key, v in zip(TRACE_KEYS, values)}


def first_order_quantities(
    J: ArrayLike, m: ArrayLike, w: ArrayLike, zhat: float
) -> dict[str, float]:
    """Exact tau = 0 quantities of the gradient flow for a given (J, m, w).

    With P = w^T B B^T w and Q = m^T B^T B m, the flow starts with W1 = (zhat - z0) B^T w m^T B^T,
    so dz/dtau(0) = (zhat - z0) P Q and ||W1|| = |zhat - z0| sqrt(P Q). The theory (eqs. 15, 19)
    gives P, Q -> beta and z0 -> 0, i.e. dz/dtau(0) -> zhat beta^2 and ||W1|| -> zhat beta.
    """
    J, m, w = (np.asarray(a, dtype=float) for a in (J, m, w))
    lu = scipy.linalg.lu_factor(np.eye(J.shape[0]) - J)
    Bm = scipy.linalg.lu_solve(lu, m)
    Btw = scipy.linalg.lu_solve(lu, w, trans=1)
    P, Q, z0 = float(Btw @ Btw), float(Bm @ Bm), float(w @ Bm)
    return {
        "z0": z0,
        "P": P,
        "Q": Q,
        "dz_dtau": (zhat - z0) * P * Q,
        "norm_W1": abs(zhat - z0) * np.sqrt(P * Q),
    }


def mc_first_order(N: int, g: float, zhat: float, seed: int) -> dict[str, float]:
    """`first_order_quantities` for one `draw_network(N, g, seed)`."""
    return first_order_quantities(*draw_network(N, g, seed), zhat)


def monte_carlo_check(N: int, gs: ArrayLike, seeds: int, zhat: float = 0.5) -> list[dict]:
    """Finite-N draws against the N -> infinity predictions, one row per (quantity, g).

    Rows hold the prediction, the mean and standard error over ``seeds`` draws and the z-score
    (mean - prediction) / SE, so a user sees where finite N breaks the theory (SPEC T: at g near 1
    the quadratic forms grow heavy-tailed and need large N). The first-order slopes are normalised
    by (zhat - z0) so that the random initial readout z0 drops out.
    """
    rows = []
    for g in np.atleast_1d(np.asarray(gs, dtype=float)):
        limits = trace_limits(g)
        samples: dict[str, list[float]] = {}
        for seed in range(seeds):
            traces = trace_moments(N, g, seed)
            first = mc_first_order(N, g, zhat, seed)
            pq = first["P"] * first["Q"]
            values = {**traces, "dz_dtau(0)/(zhat-z0)": pq, "||W1||/|zhat-z0|": np.sqrt(pq), "z0": first["z0"]}
            for key, value in values.items():
                samples.setdefault(key, []).append(value)
        b = float(beta(g))
        predictions = {**{k: float(v) for k, v in limits.items()}, "dz_dtau(0)/(zhat-z0)": b**2,
                       "||W1||/|zhat-z0|": b, "z0": 0.0}
        for key, values in samples.items():
            v = np.asarray(values)
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
            mean = float(v.mean())
            rows.append({"quantity": key, "g": float(g), "theory": predictions[key], "mean": mean,
                         "se": float(se), "z": _z_score(mean, predictions[key], se)})
    return rows


def _z_score(mean: float, prediction: float, se: float) -> float:
    if se > 0:
        return (mean - prediction) / se
    return 0.0 if np.isclose(mean, prediction) else np.inf  # exact at g = 0: no spread at all


def collapsed_time(tau: ArrayLike, g: ArrayLike) -> Array:
    """Effective learning time x = beta^2 tau, on which curves for all g collapse (Sec. 4.1)."""
    return beta(g) ** 2 * np.asarray(tau, dtype=float)


def learning_rate(eta0: ArrayLike, g: ArrayLike) -> Array:
    """eta = eta0 (1 - g^2)^2 = eta0 / beta^2, so that x = eta0 * epoch for every g (SPEC 5.1)."""
    return np.asarray(eta0, dtype=float) / beta(g) ** 2


def _check_order(order: int) -> None:
    if order not in (1, 2, 3):
        raise UserInputError(f"order must be 1, 2 or 3, got {order!r}")


def _series(x: ArrayLike, order: int, c3: ArrayLike) -> Array:
    """x - x^2/2 + c3 x^3/6 truncated after `order` terms: the bracket shared by eqs. 48, 65, 76."""
    _check_order(order)
    x = np.asarray(x, dtype=float)
    return x - (order >= 2) * x**2 / 2 + (order >= 3) * np.asarray(c3) * x**3 / 6


def readout(x: ArrayLike, zhat: ArrayLike, g: ArrayLike, order: int = 3) -> Array:
    """Readout z(x) to first, second or third order (eqs. 15, 24, 48).

    z = zhat [x - x^2/2 + (1 + 8 zhat^2 beta) x^3/6] + O(x^4); N -> infinity, z0 = 0, small x.
    """
    zhat = np.asarray(zhat, dtype=float)
    return zhat * _series(x, order, 1 + 8 * zhat**2 * beta(g))


def loss_from_readout(z: ArrayLike, zhat: ArrayLike) -> Array:
    """Task loss L = (zhat - z)^2 / 2 (SPEC 1.3 for the simple task)."""
    return (np.asarray(zhat, dtype=float) - np.asarray(z, dtype=float)) ** 2 / 2


def s_plus(x: ArrayLike, zhat: ArrayLike, g: ArrayLike, order: int = 3) -> Array:
    """Leading singular value of dW to first, second or third order (eqs. 19, 65).

    s+ = (zhat/beta) [x - x^2/2 + (1 + 7/2 zhat^2 beta) x^3/6] + O(x^4); N -> infinity, small x.
    """
    zhat = np.asarray(zhat, dtype=float)
    b = beta(g)
    return zhat / b * _series(x, order, 1 + 3.5 * zhat**2 * b)


def s_minus(x: ArrayLike, zhat: ArrayLike) -> Array:
    """Second singular value of dW, s- = zhat^3 x^3/12 + O(x^4) (eq. 66); g-free in x units."""
    return np.asarray(zhat, dtype=float) ** 3 * np.asarray(x, dtype=float) ** 3 / 12


def tau_star(g: ArrayLike) -> Array:
    """First-order learning time tau* = 1/beta^2 = (1 - g^2)^2, i.e. x* = 1 (Sec. 4.1).

    A scaling estimate: the true flow is slower (z(x = 1) = 0.70 zhat at zhat = 0.5, g = 0).
    """
    return 1.0 / beta(g) ** 2


def norm_dw_star(g: ArrayLike, zhat: ArrayLike) -> Array:
    """First-order ||dW(tau*)|| = tau* ||W1|| = zhat/beta (Sec. 4.1, after eq. 19)."""
    return np.asarray(zhat, dtype=float) / beta(g)


def mean_grad_norm(g: ArrayLike, zhat: ArrayLike) -> Array:
    """First-order mean gradient norm ||dW(tau*)||/tau* = ||W1|| = zhat beta (eq. 19)."""
    return np.asarray(zhat, dtype=float) * beta(g)


def shuffle_loss_ratio(g: ArrayLike) -> Array:
    """L_shuffled/L0 after permuting W0 at tau*: (1 - 1/beta^2)^2 = g^4 (2 - g^2)^2.

    Eq. 69, first order; an exact algebraic identity of the first-order result.
    """
    return (1 - 1 / beta(g) ** 2) ** 2


def shuffled_readout(x: ArrayLike, zhat: ArrayLike, g: ArrayLike, order: int = 3) -> Array:
    """Readout after shuffling W0, to first, second or third order (eqs. 67, 76).

    z_s = (zhat/beta^2) [x - x^2/2 + (1 + 2 zhat^2 (1 + 3/beta)) x^3/6] + O(x^4);
    N -> infinity (shuffled W0 asymptotically free of B, w, m), small x.
    """
    zhat = np.asarray(zhat, dtype=float)
    b = beta(g)
    return zhat / b**2 * _series(x, order, 1 + 2 * zhat**2 * (1 + 3 / b))


def theory_curves(x: ArrayLike, zhat: ArrayLike, g: ArrayLike) -> dict[str, Array]:
    """Readouts, losses and singular values of all orders with the plotting "cut" of SPEC 5.2.

    The expansions diverge past convergence, so from the first grid point where z_k exceeds zhat
    on, z_k = zhat, loss_k = 0 and the SV curves are frozen at their value at that point (s+ of
    order k follows z_k, s- follows z3); without a crossing nothing is cut. The grid x runs along
    the last axis; zhat > 0 and g broadcast against it (e.g. zhat[:, None] for several targets).
    """
    x = np.asarray(x, dtype=float)
    zhat = np.asarray(zhat, dtype=float)
    if x.ndim == 0:
        raise UserInputError("x must be a grid (at least one axis)")
    if np.any(zhat <= 0):
        raise UserInputError(f"the cut rule needs zhat > 0, got zhat = {zhat}")
    shape = np.broadcast_shapes(x.shape, zhat.shape, np.shape(g))

    def freeze(curve: Array, crossed: Array) -> Array:
        first = np.argmax(crossed, axis=-1)[..., None]
        return np.where(crossed, np.take_along_axis(curve, first, axis=-1), curve)

    out: dict[str, Array] = {}
    for k in (1, 2, 3):
        z = np.broadcast_to(readout(x, zhat, g, k), shape)
        crossed = np.logical_or.accumulate(z > zhat, axis=-1)
        out[f"z{k}"] = np.where(crossed, zhat, z)
        out[f"loss{k}"] = loss_from_readout(out[f"z{k}"], zhat)
        out[f"s_plus{k}"] = freeze(np.broadcast_to(s_plus(x, zhat, g, k), shape), crossed)
    out["s_minus"] = freeze(np.broadcast_to(s_minus(x, zhat), shape), crossed)
    return out


_E12 = np.array([[0.0, 1.0], [0.0, 0.0]])


def exact_flow_g0(tau: ArrayLike, zhat: float) -> dict[str, Array]:
    """Exact N -> infinity gradient flow at g = 0 via its rank-2 reduction (eqs. 49-55).

    At g = 0, B = I and dW = [w m] A [w m]^T with w, m orthonormal, A(0) = 0, A12 the coefficient
    of w m^T. Then (I - W^T)^-1 = I + [w m] C^T [w m]^T with C = A (I - A)^-1, z = C12, and the
    flow is dA/dtau = (zhat - z) (I + C^T) E12 (I + C^T), E12 = [[0, 1], [0, 0]] (eq. 53).
    The singular values of dW are those of A. Here x = tau since beta = 1. `tau` must be a
    non-decreasing grid, tau >= 0, tau[-1] > 0; integrated by solve_ivp (DOP853, rtol 1e-10).
    Returns z, s_plus, s_minus (each shaped like tau) and A (shape tau.shape + (2, 2)).
    """
    tau = np.asarray(tau, dtype=float)
    if tau.ndim != 1 or tau.size == 0 or tau[0] < 0 or tau[-1] <= 0 or np.any(np.diff(tau) < 0):
        raise UserInputError("tau must be a non-decreasing 1-D grid with tau >= 0 and tau[-1] > 0")

    def rhs(_t: float, a: Array) -> Array:
        A = a.reshape(2, 2)
        C = np.linalg.solve(np.eye(2) - A, A)  # (I - A)^-1 A = A (I - A)^-1: the factors commute
        K = np.eye(2) + C.T
        return ((zhat - C[0, 1]) * K @ _E12 @ K).ravel()

    sol = scipy.integrate.solve_ivp(
        rhs, (0.0, float(tau[-1])), np.zeros(4), method="DOP853",
        t_eval=tau, rtol=1e-10, atol=1e-14,
    )
    if not sol.success:
        raise RuntimeError(f"exact_flow_g0 integration failed: {sol.message}")
    A = sol.y.T.reshape(-1, 2, 2)
    C = np.linalg.solve(np.eye(2) - A, A)
    s = np.linalg.svd(A, compute_uv=False)
    return {"z": C[:, 0, 1], "s_plus": s[:, 0], "s_minus": s[:, 1], "A": A}
