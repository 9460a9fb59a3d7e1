"""Cutting a run's member grid into shards, and building one shard's networks.

Members are numbered as :meth:`Ensemble.init` orders them, g outer, seed inner; a shard is a
contiguous range of those numbers, so shards concatenated in index order are the run's ensemble.
Every member draws only from its own ``member_rng(seed, g, ...)`` streams, which is why a shard
trains its members exactly as the whole ensemble would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from randstruct import store
from randstruct.engine.model import Ensemble
from randstruct.errors import UserInputError
from randstruct.runs import DTYPES, RunSpec

SHARDS = "shards"
LAYOUT = "layout.json"
SHARD_KIND = "rnn-shard"


@dataclass(frozen=True)
class Shard:
    """Members ``lo`` .. ``hi - 1`` of a run, trained in ``<run>/shards/<index>``."""

    index: int
    lo: int
    hi: int

    @property
    def size(self) -> int:
        return self.hi - self.lo

    def path(self, run_dir: str | Path) -> Path:
        return Path(run_dir) / SHARDS / str(self.index)


def check_shard_size(shard_size) -> int:
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise UserInputError(f"shard size must be an integer >= 1 (networks per shard), got {shard_size!r}")
    return int(shard_size)


def default_shard_size(n_members: int, n_workers: int) -> int:
    """Members per shard so that every worker gets at least two shards (when there are enough members):
    a worker that finishes early then still finds work, and a lost worker costs less."""
    return max(1, n_members // (2 * max(1, n_workers)))


def cut(n_members: int, shard_size: int) -> list[Shard]:
    """Contiguous shards of ``shard_size`` members in member order (the last may be smaller)."""
    size = check_shard_size(shard_size)
    return [Shard(k, lo, min(lo + size, n_members)) for k, lo in enumerate(range(0, n_members, size))]


def members(spec: RunSpec) -> tuple[np.ndarray, np.ndarray]:
    """(g, seed) of every member of ``spec``'s grid, in ensemble order."""
    g, seeds = np.asarray(spec.g, float), np.asarray(spec.seeds, np.int64)
    return np.repeat(g, seeds.size), np.tile(seeds, g.size)


def shard_ensemble(spec: RunSpec, shard: Shard) -> Ensemble:
    """The networks of ``shard``, exactly members lo..hi-1 of ``spec.make_ensemble()``.

    A shard may cross g values: it is built as one :meth:`Ensemble.init` per run of equal g and
    concatenated, so no member is ever drawn that the shard does not hold.
    """
    g, seed = members(spec)
    g, seed = g[shard.lo:shard.hi], seed[shard.lo:shard.hi]
    task = spec.make_task()
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    parts = [Ensemble.init(spec.n, [g[a]], seed[a:b].tolist(), task.n_in, task.n_out, spec.nonlinearity,
                           DTYPES[spec.dtype], spec.device, spec.shared_vector, spec.x0_from_input, spec.options)
             for a, b in zip(starts, np.r_[starts[1:], g.size])]
    if len(parts) == 1:
        return parts[0]
    names = ("wi", "wrec", "wo", "b", "x0", "w0") + tuple(k for k in ("sign", "mask") if getattr(parts[0], k) is not None)
    tensors = {name: torch.cat([getattr(p, name) for p in parts]) for name in names}
    return Ensemble(**tensors, g=np.concatenate([p.g for p in parts]), seed=np.concatenate([p.seed for p in parts]),
                    nonlinearity=spec.nonlinearity, options=spec.options)


def shard_spec(spec: RunSpec, shard: Shard) -> dict:
    """What a shard's config.json records: the run's spec and which members the shard holds."""
    return {"run": spec.to_dict(), "shard": shard.index, "members": [shard.lo, shard.hi]}


def write_layout(run_dir: Path, shard_size: int, shards: list[Shard]) -> None:
    folder = Path(run_dir) / SHARDS
    folder.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(folder / LAYOUT, {"shard_size": shard_size,
                                              "shards": [[s.lo, s.hi] for s in shards]})


def read_layout(run_dir: Path) -> tuple[int, list[Shard]] | None:
    path = Path(run_dir) / SHARDS / LAYOUT
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data["shard_size"], [Shard(k, lo, hi) for k, (lo, hi) in enumerate(data["shards"])]
