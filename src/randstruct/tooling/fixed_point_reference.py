"""A one-network-at-a-time fixed-point search in plain torch, the way FixedPointFinder (Golub &
Sussillo 2018) works: autograd on the mean of q over one network's initial states, Adam (epsilon
0.01) on all of them jointly with FixedPointFinder's adaptive learning rate and adaptive
gradient-norm clipping, stopped when every state has q < tol_q or |dq| < tol_dq times the
learning rate, or after max_iters. It is the baseline of the batched search's speed and results
(``python -m randstruct.tooling.fixed_point_reference RUN``), not a part of the library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque

import numpy as np
import torch

from randstruct.dynamics.fixed_points import ADAM, DEFAULTS, FixedPoints, Search, pack, select

THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class AdaptiveRate:
    """FixedPointFinder's learning-rate schedule: start at 1; at most one change per ``patience``
    steps; x ``down`` when the newest loss is above each of the ``patience`` before it, x ``up``
    when the last ``patience`` steps each decreased it."""

    def __init__(self, rate: float = 1.0, patience: int = 5, down: float = 0.95, up: float = 1 / 0.95):
        self.rate, self.patience, self.down, self.up = rate, patience, down, up
        self.losses: deque = deque(maxlen=patience + 1)
        self.since_change = 0

    def update(self, loss: float) -> None:
        self.losses.append(loss)
        self.since_change += 1
        if self.since_change < self.patience or len(self.losses) <= self.patience:
            return
        window = list(self.losses)
        if all(window[-1] > v for v in window[:-1]):
            self.rate *= self.down
            self.since_change = 0
        elif all(b < a for a, b in zip(window[:-1], window[1:])):
            self.rate *= self.up
            self.since_change = 0


class AdaptiveClip:
    """FixedPointFinder's gradient-norm ceiling: the 95th percentile of the last 128 norms (1e12 before any)."""

    def __init__(self, window: int = 128, percentile: float = 95.0, initial: float = 1e12):
        self.norms: deque = deque(maxlen=window)
        self.percentile, self.value = percentile, initial

    def update(self, norm: float) -> None:
        self.norms.append(norm)
        self.value = float(np.percentile(self.norms, self.percentile))


def search_one(w: torch.Tensor, const: torch.Tensor, x_init: torch.Tensor, nonlinearity: str,
               tol_q=DEFAULTS["tol_q"], tol_dq=DEFAULTS["tol_dq"], max_iters=DEFAULTS["max_iters"]):
    """One network: ``w`` (N, N), ``const`` and ``x_init`` (K, N). Returns (x, F, q, dq, iterations)."""
    act = torch.tanh if nonlinearity == "tanh" else (lambda v: v)
    x = x_init.clone().requires_grad_(True)
    rate, clip = AdaptiveRate(), AdaptiveClip()
    opt = torch.optim.Adam([x], lr=rate.rate, betas=ADAM["betas"], eps=ADAM["eps"])
    q_prev = None
    it = 0
    for it in range(1, max_iters + 1):
        opt.zero_grad()
        f = -x + act(x) @ w.T + const
        q = 0.5 * (f * f).sum(-1)
        q_mean = q.mean()
        q_mean.backward()
        with torch.no_grad():
            if q_prev is not None:
                dq = (q_prev - q).abs()
                if bool(((q < tol_q) | (dq < tol_dq * rate.rate)).all()):
                    break
            q_prev = q.detach().clone()
            norm = float(x.grad.norm())
            if norm > clip.value:
                x.grad.mul_(clip.value / norm)
        for group in opt.param_groups:
            group["lr"] = rate.rate
        opt.step()
        rate.update(float(q_mean.detach()))
        clip.update(norm)
    with torch.no_grad():
        f = -x + act(x) @ w.T + const
        q = 0.5 * (f * f).sum(-1)
        dq = (q_prev - q).abs() if q_prev is not None else torch.zeros_like(q)
    return x.detach(), f.detach(), q.detach(), dq, it


def reference(wrec: torch.Tensor, const: torch.Tensor, x_init: torch.Tensor, nonlinearity: str,
              members, **options) -> tuple[FixedPoints, list[float], list[int], float]:
    """The serial search over ``members`` (their indices), post-processed as the library does
    (duplicates merged, Jacobians decomposed, as FixedPointFinder does too). Returns the fixed
    points of those members, the wall time and the iterations of each search, and the wall time of
    the post-processing."""
    parts, walls = [], []
    for m in members:
        start = time.perf_counter()
        parts.append(search_one(wrec[m], const[m], x_init[m], nonlinearity, **options))
        walls.append(time.perf_counter() - start)
    start = time.perf_counter()
    res = Search(*(torch.stack([p[i] for p in parts]) for i in range(4)),
                 n_iters=torch.tensor([[p[4]] * x_init.shape[1] for p in parts]))
    sub = x_init[list(members)]
    cond = np.zeros(sub.shape[:2], np.int64)
    kept = select(res, sub, cond, DEFAULTS["tol_unique"], DEFAULTS["outlier_distance_scale"],
                  options.get("tol_q", DEFAULTS["tol_q"]))
    out = pack(res, kept, wrec[list(members)], cond, nonlinearity)
    return out, walls, [p[4] for p in parts], time.perf_counter() - start


def match(a: FixedPoints, b: FixedPoints, tol: float) -> np.ndarray:
    """Per member: how many fixed points of ``b`` have one in ``a`` within ``tol`` (max-abs)."""
    hits = np.zeros(a.xstar.shape[0], np.int64)
    for m in range(a.xstar.shape[0]):
        xa, xb = a.xstar[m, :a.count[m]], b.xstar[m, :b.count[m]]
        if len(xa) and len(xb):
            hits[m] = int((np.abs(xb[:, None] - xa[None]).max(-1).min(1) < tol).sum())
    return hits


def members_of(fp: FixedPoints, members) -> FixedPoints:
    return FixedPoints(**{k: (v[members] if isinstance(v, np.ndarray) else v) for k, v in vars(fp).items()})


def main() -> None:
    from randstruct.dynamics.coordinates import initial_states
    from randstruct.dynamics.fixed_points import find_fixed_points
    from randstruct.runs import load

    p = argparse.ArgumentParser(description="batched fixed-point search vs the serial FixedPointFinder-style one")
    p.add_argument("run")
    p.add_argument("--inits", type=int, default=256)
    p.add_argument("--serial-members", type=int, default=None, help="time the serial search on every k-th member")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if any(os.environ.get(k) != "1" for k in THREADS):
        # one thread for both searches; BLAS libraries read these when they load, hence the restart
        os.execve(sys.executable, [sys.executable, "-m", "randstruct.tooling.fixed_point_reference", *sys.argv[1:]],
                  {**os.environ, **dict.fromkeys(THREADS, "1")})
    torch.set_num_threads(1)
    run = load(a.run)
    ens = run.ensemble(dtype=torch.float64)
    x_init, _ = initial_states(ens, run.task(), a.inits, 0)
    const = ens.b[:, None].expand_as(x_init).contiguous()
    start = time.perf_counter()
    fp = find_fixed_points(ens.wrec, const, x_init, None, ens.nonlinearity)
    batched = time.perf_counter() - start
    members = list(range(0, ens.size, a.serial_members or 1))
    ref, walls, iters, post = reference(ens.wrec, const, x_init, ens.nonlinearity, members)
    sub = members_of(fp, members)
    found6, found3 = match(sub, ref, 1e-6), match(sub, ref, 1e-3)
    rows = [{"member": m, "g": float(ens.g[m]), "serial_s": walls[i], "serial_iters": iters[i],
             "serial_fixed_points": int(ref.count[i]), "serial_stable": int(np.nansum(ref.is_stable[i])),
             "batched_fixed_points": int(sub.count[i]), "batched_stable": int(np.nansum(sub.is_stable[i])),
             "serial_found_by_batched_1e-6": int(found6[i]), "serial_found_by_batched_1e-3": int(found3[i])}
            for i, m in enumerate(members)]
    serial = (sum(walls) + post) * ens.size / len(members)
    out = {"E": ens.size, "N": ens.n, "inits": a.inits, "batched_s": batched, "serial_members": len(members),
           "serial_s_measured": sum(walls) + post, "serial_postprocess_s": post, "serial_s_all_members": serial,
           "speedup": serial / batched, "threads": {k: os.environ.get(k) for k in THREADS},
           "info": fp.info, "serial_fixed_points": int(ref.count.sum()),
           "serial_found_by_batched_1e-6": int(found6.sum()), "serial_found_by_batched_1e-3": int(found3.sum()),
           "members": rows}
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
