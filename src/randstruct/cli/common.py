"""What every verb shares: the one-line parser, the usage error and the value parsers."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from randstruct.errors import UserInputError, require


class UsageError(UserInputError):
    """Bad command-line input."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message}")


MAX_VALUES = 100_000  # a range longer than this is a typo (0:1:1e-9), not a grid


def parse_floats(text: str, option: str) -> list[float]:
    """'0,0.9,1.8' or an inclusive range 'start:stop:step' such as '0:2.1:0.3'."""
    example = "expected comma-separated numbers like 0,0.9,1.8 or a range start:stop:step like 0:2.1:0.3"
    try:
        if ":" in text:
            start, stop, step = (float(p) for p in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = (stop - start) / step + 1
            if count > MAX_VALUES:
                raise UsageError(f"invalid {option} value {text!r}: {count:.3g} values; at most {MAX_VALUES}")
            values = np.arange(start, stop + step / 2, step)
            return [round(float(v), 12) for v in values]
        values = [float(p) for p in text.split(",")]
    except UsageError:
        raise
    except ValueError:
        raise UsageError(f"invalid {option} value {text!r}: {example}") from None
    if not all(np.isfinite(values)):
        raise UsageError(f"invalid {option} value {text!r}: numbers must be finite")
    return values


def check_writable(path: Path, option: str) -> Path:
    """``path`` if it can be written (its folder, created if need be, lies in a writable folder);
    checked before any work so that a read-only run folder costs nothing."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
        raise UserInputError(f"cannot write {path}: {parent} is not a folder you may write to; "
                             f"choose another {option}")
    return path


def parse_task_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --task-param {item!r}: expected NAME=VALUE, e.g. T=100")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """``--scheduler``, ``--shard-size`` and ``--threads``: where a verb's networks are trained or analysed."""
    p.add_argument("--scheduler", default=None, metavar="WHERE",
                   help="run the networks in shards on a Dask cluster: local:K (K worker processes here), "
                        "tcp://HOST:PORT or a scheduler file *.json; default: in this process")
    p.add_argument("--shard-size", type=int, default=None, metavar="M",
                   help="networks per shard (with --scheduler); default: at least two shards per worker")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch threads per shard task (with --scheduler); default: cores / K for local:K, else 1")


def executor_from_args(a: argparse.Namespace):
    """Where a verb's work runs, from the checked cluster options: in this process without
    --scheduler (no Dask at all), else a Dask executor (entered with ``with``, which connects)."""
    if a.scheduler is None:
        for flag, value in (("--shard-size", a.shard_size), ("--threads", a.threads)):
            if value is not None:
                raise UsageError(f"{flag} needs --scheduler (it sets how networks are cut into shards for a cluster)")
        from randstruct.executors import InProcess

        return InProcess()
    require("distributed", "--scheduler needs", "distributed")
    from randstruct.executors.scheduler import check_threads, parse_scheduler

    spec = parse_scheduler(a.scheduler)
    if a.shard_size is not None and a.shard_size < 1:
        raise UsageError(f"--shard-size must be >= 1 (networks per shard), got {a.shard_size}")
    check_threads(a.threads, spec)
    from randstruct.executors import make_executor

    return make_executor(a.scheduler, shard_size=a.shard_size, threads=a.threads)


def thread_hint(device: str = "cpu") -> str | None:
    """The OMP_NUM_THREADS=1 advice, when it applies: CPU training with several torch threads while
    the machine's load exceeds its free cores (threads then wait for each other; several-fold slower)."""
    if device != "cpu" or "OMP_NUM_THREADS" in os.environ or not hasattr(os, "getloadavg"):
        return None
    import torch

    threads, cores, load = torch.get_num_threads(), os.cpu_count() or 1, os.getloadavg()[0]
    if threads < 2 or load < cores - threads + 1:
        return None
    return (f"note: this machine is busy (load {load:.1f} on {cores} cores) and torch uses {threads} threads; "
            f"small ensembles run several times faster here with OMP_NUM_THREADS=1 in front of the command")


def print_thread_hint(device: str = "cpu") -> None:
    """After the work, next to its timing (stdout), so that a failed command still prints one line only."""
    hint = thread_hint(device)
    if hint:
        print(hint)
