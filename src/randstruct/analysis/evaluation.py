"""Losses of modified networks as ensemble evaluations.

The (network, rank) and (network, shuffle) pairs become the members of one
:class:`~randstruct.engine.model.Ensemble` -- the network's final input/output weights, bias and
initial state with a modified recurrent matrix -- evaluated in memory-bounded chunks through
:meth:`Ensemble.loss`. Recurrent matrices are built in float64 from one SVD per network and
rounded once to the run's precision, so a full-rank truncation reproduces W exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import xarray as xr

from randstruct.analysis.base import DEFAULT_CHUNK_BYTES
from randstruct.analysis.connectivity import SHUFFLE_CODES, SHUFFLE_VARIANTS, low_rank, shuffle_w0, svd64
from randstruct.engine.batches import make_batch
from randstruct.engine.model import Ensemble
from randstruct.engine.seeding import member_rng
from randstruct.errors import UserInputError
from randstruct.tasks import Batch, Task

EVAL_POLICIES = ("fixed", "fresh")
EVAL_CODES = {"final": 1, "trunc_dw": 2, "trunc_w": 3, "full": 4, "rowcol": 5, "resample": 6}


def eval_rng(seed: int, g: float, key: tuple[int, ...] = ()) -> np.random.Generator:
    """The stream of network (seed, g)'s evaluation set: ``key=()`` is the fixed set, else a fresh one."""
    return member_rng(int(seed), float(g), "eval", *key)


def eval_batch(task: Task, seed: int, g: float, trials: int, key: tuple[int, ...] = ()) -> Batch:
    """The evaluation set of network (seed, g), as the analyses draw it."""
    return task.sample(trials, eval_rng(seed, g, key))


class Evaluator:
    """Losses of many (network, recurrent matrix) members, as ensemble chunks of bounded memory."""

    def __init__(self, ens: Ensemble, task: Task, eval_trials: int, eval_policy: str, chunk_bytes: int,
                 loss: str = "mse", noise: bool = False):
        if eval_policy not in EVAL_POLICIES:
            raise UserInputError(f"unknown eval_policy {eval_policy!r}; allowed: {', '.join(EVAL_POLICIES)}")
        if int(eval_trials) != eval_trials or eval_trials < 1:
            raise UserInputError(f"eval_trials must be an integer >= 1, got {eval_trials}")
        if task.n_in != ens.n_in or task.n_out != ens.n_out:
            raise UserInputError(f"task {task.name!r} does not fit networks with {ens.n_in} inputs / {ens.n_out} "
                                 "outputs")
        self.ens, self.task, self.loss_kind = ens, task, loss
        # with the training noise of the networks' options, the same draw for every evaluation of a member
        self.noise_seed = 0 if noise and ens.options.noisy else None
        # a deterministic task gives identical trials: one is enough
        self.trials = int(eval_trials) if task.stochastic else 1
        item = torch.finfo(ens.dtype).bits // 8
        n, k, b = ens.n, task.n_steps, self.trials
        # recurrent matrices (built, selected, augmented), the state step and the batch arrays twice
        per_member = item * (3 * n * n + b * (3 * n + ens.n_in + 1) + k * b * (2 * ens.n_in + 6 * ens.n_out
                                                                      + 2 * task.has_labels)
                             + (0 if self.noise_seed is None else 2 * b * n * (k + 1)))
        self.chunk = max(1, int(chunk_bytes // per_member))
        self.fixed = self._batches(np.arange(ens.size), [()] * ens.size) if eval_policy == "fixed" else None

    def _batches(self, nets: np.ndarray, keys: list[tuple[int, ...]]) -> tuple[torch.Tensor, ...]:
        """Evaluation sets of the members ``nets`` as batch-first (m, B, K, C) tensors."""
        ens = self.ens
        rngs = [eval_rng(int(ens.seed[i]), float(ens.g[i]), key) for i, key in zip(nets, keys)]
        return tuple(torch.as_tensor(a, dtype=ens.dtype, device=ens.device).transpose(1, 2)
                     for a in make_batch(self.task, rngs, self.trials))

    def n_chunks(self, n_members: int) -> int:
        return -(-n_members // self.chunk)

    def losses(self, nets: np.ndarray, index: np.ndarray, code: str,
               weights: Callable[[slice], torch.Tensor], bar=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Loss of member j = network ``nets[j]`` with recurrent matrix ``weights(slice)[j]``, and its
        decision accuracy where the task has labels (else None).

        ``index[j]`` numbers the member's fresh evaluation set (rank or shuffle) under "fresh".
        """
        out = np.empty(len(nets))
        acc = np.empty(len(nets)) if self.task.has_labels else None
        for start in range(0, len(nets), self.chunk):
            sl = slice(start, min(start + self.chunk, len(nets)))
            idx = nets[sl]
            if self.fixed is None:
                arrays = self._batches(idx, [(EVAL_CODES[code], int(j)) for j in index[sl]])
            else:
                sel = torch.as_tensor(idx, device=self.ens.device)
                arrays = tuple(a.index_select(0, sel) for a in self.fixed)
            members = self.ens.select(idx).replace(wrec=weights(sl))
            decision = arrays[3] if len(arrays) > 3 else None
            value, right = members.evaluate(*arrays[:3], self.task.dt, self.loss_kind, decision, self.noise_seed)
            out[sl] = value.double().cpu().numpy()
            if acc is not None:
                acc[sl] = right.double().cpu().numpy()
            if bar is not None:
                bar.update(1)
        return out, acc


@dataclass
class Plan:
    """The members of one analysis: their networks, evaluation indices and recurrent matrices."""

    code: str
    nets: np.ndarray
    index: np.ndarray
    weights: Callable[[slice], torch.Tensor]


def member_pairs(n_net: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network-major (network, value) pairs."""
    return np.repeat(np.arange(n_net), len(values)), np.tile(values, n_net)


def truncation_plan(ens: Ensemble, ranks: np.ndarray, of: str) -> Plan:
    if of not in ("dw", "w"):
        raise UserInputError(f"of must be 'dw' or 'w', got {of!r}")
    w64 = ens.wrec.double()
    base = ens.w0.double() if of == "dw" else torch.zeros_like(w64)
    u, s, vh = svd64(w64 - base)
    nets, rank = member_pairs(ens.size, ranks)

    def weights(sl: slice) -> torch.Tensor:
        n_idx = torch.as_tensor(nets[sl], device=ens.device)
        r = torch.as_tensor(rank[sl], device=ens.device)
        top = int(r.max())
        return (base[n_idx] + low_rank(u[n_idx, :, :top], s[n_idx, :top], vh[n_idx, :top], r)).to(ens.dtype)

    return Plan("trunc_dw" if of == "dw" else "trunc_w", nets, rank, weights)


def shuffle_plan(ens: Ensemble, shuffles: int, variant: str) -> Plan:
    if variant not in SHUFFLE_VARIANTS:
        raise UserInputError(f"unknown shuffle variant {variant!r}; allowed: {', '.join(SHUFFLE_VARIANTS)}")
    w0 = ens.w0.double().cpu().numpy()
    dw = ens.wrec.double() - ens.w0.double()
    nets, k = member_pairs(ens.size, np.arange(shuffles))

    def weights(sl: slice) -> torch.Tensor:
        mats = [shuffle_w0(w0[i], float(ens.g[i]), variant,
                           member_rng(int(ens.seed[i]), float(ens.g[i]), "shuffle", SHUFFLE_CODES[variant], int(j)),
                           ens.options)
                for i, j in zip(nets[sl], k[sl])]
        n_idx = torch.as_tensor(nets[sl], device=ens.device)
        return (torch.as_tensor(np.stack(mats), device=ens.device) + dw[n_idx]).to(ens.dtype)

    return Plan(variant, nets, k, weights)


def final_plan(ens: Ensemble) -> Plan:
    nets = np.arange(ens.size)
    return Plan("final", nets, np.zeros_like(nets), lambda sl: ens.wrec[sl])


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="chunk", desc="analyze", dynamic_ncols=True, disable=not enabled)


def net_coords(ens: Ensemble) -> dict:
    return {"net": np.arange(ens.size), "g": ("net", np.asarray(ens.g, float)),
            "seed": ("net", np.asarray(ens.seed, np.int64))}


def run_plans(ens: Ensemble, task: Task, plans: list[Plan], eval_trials: int, eval_policy: str,
               chunk_bytes: int, progress: bool, loss: str = "mse",
               noise: bool = False) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(loss, accuracy or None) of every plan's members; with ``noise``, under the networks' noise."""
    ev = Evaluator(ens, task, eval_trials, eval_policy, chunk_bytes, loss, noise)
    with _progress(sum(ev.n_chunks(len(p.nets)) for p in plans), progress) as bar:
        return [ev.losses(p.nets, p.index, p.code, p.weights, bar) for p in plans]


def rank_values(ranks: int | Sequence[int], n: int) -> np.ndarray:
    if np.isscalar(ranks):
        if int(ranks) != ranks or ranks < 0:
            raise UserInputError(f"ranks must be an integer >= 0, got {ranks}")
        return np.arange(min(int(ranks), n) + 1)
    values = np.asarray(ranks, dtype=np.int64)
    if values.ndim != 1 or values.size == 0 or values.min() < 0 or values.max() > n:
        raise UserInputError(f"ranks must lie in 0..{n}, got {list(ranks)}")
    return values


def truncation_losses(ens: Ensemble, task: Task, ranks: int | Sequence[int] = 25, of: str = "dw",
                      eval_trials: int = 512, eval_policy: str = "fixed",
                      chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: bool = False,
                      loss: str = "mse") -> xr.DataArray:
    """Loss (net, rank) of rank-r truncations of dW (``of="dw"``) or of W (``of="w"``).

    ``ranks`` is R (ranks 0..min(R, N)) or an explicit list. ``ens`` holds the final networks.
    """
    r = rank_values(ranks, ens.n)
    ((value, _),) = run_plans(ens, task, [truncation_plan(ens, r, of)], eval_trials, eval_policy, chunk_bytes,
                              progress, loss)
    return xr.DataArray(value.reshape(ens.size, len(r)), dims=("net", "rank"), coords={**net_coords(ens), "rank": r})


def shuffle_losses(ens: Ensemble, task: Task, shuffles: int = 10, variant: str = "full",
                   eval_trials: int = 512, eval_policy: str = "fixed",
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: bool = False,
                   loss: str = "mse") -> xr.DataArray:
    """Loss (net, shuffle) of the shuffled-W0 + final-dW controls of one ``variant``."""
    check_count(shuffles, "shuffles")
    ((value, _),) = run_plans(ens, task, [shuffle_plan(ens, shuffles, variant)], eval_trials, eval_policy,
                              chunk_bytes, progress, loss)
    return xr.DataArray(value.reshape(ens.size, shuffles), dims=("net", "shuffle"),
                        coords={**net_coords(ens), "shuffle": np.arange(shuffles)})


def final_losses(ens: Ensemble, task: Task, eval_trials: int = 512, eval_policy: str = "fixed",
                 loss: str = "mse") -> xr.DataArray:
    """Loss (net) of the networks as they are, on the same evaluation sets as the analyses."""
    ((value, _),) = run_plans(ens, task, [final_plan(ens)], eval_trials, eval_policy, DEFAULT_CHUNK_BYTES,
                              False, loss)
    return xr.DataArray(value, dims="net", coords=net_coords(ens))


def check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise UserInputError(f"{name} must be an integer >= 1, got {value}")


def check_index(value: int, name: str) -> None:
    """An integer parameter >= 0 (a rank, a seed)."""
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise UserInputError(f"{name} must be an integer >= 0, got {value}")


def check_time(value: float, name: str) -> None:
    """A duration parameter (units of tau): finite and >= 0."""
    if not (np.isfinite(value) and value >= 0):
        raise UserInputError(f"{name} must be a time >= 0 (units of tau), got {value}")


def check_flag(value, name: str) -> None:
    if value not in (True, False):
        raise UserInputError(f"{name} must be true or false, got {value!r}")
