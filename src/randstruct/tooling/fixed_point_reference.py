"""A one-network-at-a-time fixed-point search in plain torch, the way FixedPointFinder (Golub &
Sussillo 2018) works: autograd on the mean of q over one network's initial states, Adam
(epsilon 0.01) on all of them jointly, stopped when every state has q < tol_q or |dq| < tol_dq,
or after max_iters. It is the baseline of the batched search's speed and results
(``python -m randstruct.tooling.fixed_point_reference RUN``), not a part of the library.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from randstruct.dynamics.fixed_points import ADAM, DEFAULTS, LR, FixedPoints, Search, pack, select


def search_one(w: torch.Tensor, const: torch.Tensor, x_init: torch.Tensor, nonlinearity: str,
               tol_q=DEFAULTS["tol_q"], tol_dq=DEFAULTS["tol_dq"], max_iters=DEFAULTS["max_iters"], lr=LR):
    """One network: ``w`` (N, N), ``const`` and ``x_init`` (K, N). Returns (x, F, q, dq, iterations)."""
    act = torch.tanh if nonlinearity == "tanh" else (lambda v: v)
    x = x_init.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr, betas=ADAM["betas"], eps=ADAM["eps"])
    q_prev = None
    it = 0
    for it in range(1, max_iters + 1):
        opt.zero_grad()
        f = -x + act(x) @ w.T + const
        q = 0.5 * (f * f).sum(-1)
        q.mean().backward()
        with torch.no_grad():
            if q_prev is not None:
                dq = (q_prev - q).abs()
                if bool(((q < tol_q) | (dq < tol_dq)).all()):
                    break
            q_prev = q.detach().clone()
        opt.step()
    with torch.no_grad():
        f = -x + act(x) @ w.T + const
        q = 0.5 * (f * f).sum(-1)
        dq = (q_prev - q).abs() if q_prev is not None else torch.zeros_like(q)
    return x.detach(), f.detach(), q.detach(), dq, it


def reference(wrec: torch.Tensor, const: torch.Tensor, x_init: torch.Tensor, nonlinearity: str,
              members, **options) -> tuple[FixedPoints, float]:
    """The serial search over ``members`` (their indices), post-processed as the library does.
    Returns the fixed points of those members and the wall time of the searches."""
    parts, start = [], time.perf_counter()
    for m in members:
        parts.append(search_one(wrec[m], const[m], x_init[m], nonlinearity, **options))
    wall = time.perf_counter() - start
    res = Search(*(torch.stack([p[i] for p in parts]) for i in range(4)),
                 n_iters=torch.tensor([[p[4]] * x_init.shape[1] for p in parts]))
    sub = x_init[list(members)]
    cond = np.zeros(sub.shape[:2], np.int64)
    kept = select(res, sub, cond, DEFAULTS["tol_unique"], DEFAULTS["outlier_distance_scale"],
                  options.get("tol_q", DEFAULTS["tol_q"]))
    return pack(res, kept, wrec[list(members)], cond, nonlinearity), wall


def match(a: FixedPoints, b: FixedPoints, tol: float) -> dict:
    """How many fixed points of ``a`` have one in ``b`` (same member) within ``tol`` (max-abs), and back."""
    hits_ab = hits_ba = total_a = total_b = 0
    for m in range(a.xstar.shape[0]):
        xa, xb = a.xstar[m, :a.count[m]], b.xstar[m, :b.count[m]]
        total_a, total_b = total_a + len(xa), total_b + len(xb)
        if len(xa) and len(xb):
            d = np.abs(xa[:, None] - xb[None]).max(-1)
            hits_ab += int((d.min(1) < tol).sum())
            hits_ba += int((d.min(0) < tol).sum())
    return {"a": total_a, "b": total_b, "a_in_b": hits_ab, "b_in_a": hits_ba}


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
    torch.set_num_threads(1)
    run = load(a.run)
    ens = run.ensemble(dtype=torch.float64)
    x_init, _ = initial_states(ens, run.task(), a.inits, 0)
    const = ens.b[:, None].expand_as(x_init).contiguous()
    start = time.perf_counter()
    fp = find_fixed_points(ens.wrec, const, x_init, None, ens.nonlinearity)
    batched = time.perf_counter() - start
    step = a.serial_members or 1
    members = list(range(0, ens.size, step))
    ref, serial = reference(ens.wrec, const, x_init, ens.nonlinearity, members)
    sub = FixedPoints(**{k: (v[members] if isinstance(v, np.ndarray) and v.ndim and k != "info" else v)
                         for k, v in vars(fp).items()})
    out = {"E": ens.size, "N": ens.n, "inits": a.inits, "batched_s": batched, "serial_s_measured": serial,
           "serial_members": len(members), "serial_s_per_member": serial / len(members),
           "speedup_per_member": (serial / len(members)) / (batched / ens.size), "info": fp.info,
           "match_1e-6": match(sub, ref, 1e-6), "match_1e-3": match(sub, ref, 1e-3),
           "stable_batched": int(np.nansum(sub.is_stable)), "stable_serial": int(np.nansum(ref.is_stable))}
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
