"""``--scheduler``: which Dask cluster a command runs on, and the connection to it.

- ``local:K``: a ``LocalCluster`` of K worker processes started for the command (on 127.0.0.1),
  each running one shard at a time with ``threads`` torch threads; K x threads must fit the cores.
- an address Dask accepts (``tcp://HOST:PORT``, ``tls://...``, ``HOST:PORT``) or a scheduler file
  (``*.json``, as ``dask scheduler --scheduler-file`` and dask-jobqueue write it): an existing
  scheduler; every task then uses ``threads`` torch threads (default 1, one per Dask thread).

Parsing imports nothing from Dask; :func:`open_cluster` does.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from randstruct.errors import UserInputError
from randstruct.store import RunError

CONNECT_TIMEOUT = 5.0  # seconds: an unreachable scheduler is reported well within 10 s
_EXAMPLES = "local:K (K worker processes here), tcp://HOST:PORT or a scheduler file *.json"


@dataclass(frozen=True)
class SchedulerSpec:
    kind: str  # "local", "address" or "file"
    workers: int = 0  # local only
    address: str = ""

    def __str__(self) -> str:
        return f"local:{self.workers}" if self.kind == "local" else self.address


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_scheduler(text: str) -> SchedulerSpec:
    """Check a ``--scheduler`` value without contacting anything."""
    text = str(text).strip()
    if text.startswith("local:"):
        k = text[len("local:"):]
        if not k.isdigit() or int(k) < 1:
            raise UserInputError(f"invalid scheduler {text!r}: local:K needs a whole number of workers K >= 1, "
                                 f"e.g. local:4")
        return SchedulerSpec("local", workers=int(k))
    if re.fullmatch(r"[a-z][a-z0-9+]*://\S+", text) or re.fullmatch(r"[\w.\-]+:\d+", text):
        return SchedulerSpec("address", address=text)
    if text.endswith(".json"):
        if not Path(text).is_file():
            raise UserInputError(f"scheduler file {text!r} does not exist")
        return SchedulerSpec("file", address=text)
    raise UserInputError(f"invalid scheduler {text!r}; allowed: {_EXAMPLES}")


def check_threads(threads, spec: SchedulerSpec | None) -> int | None:
    """Torch threads per task: validated, and for ``local:K`` defaulted to cores // K and capped so
    that K x threads <= cores."""
    if threads is not None and (isinstance(threads, bool) or int(threads) != threads or threads < 1):
        raise UserInputError(f"threads must be a whole number >= 1, got {threads!r}")
    if spec is None or spec.kind != "local":
        return None if threads is None else int(threads)
    n = cores()
    t = max(1, n // spec.workers) if threads is None else int(threads)
    if spec.workers * t > n:
        raise UserInputError(f"{spec} with {t} thread{'s' * (t > 1)} per worker needs {spec.workers * t} cores, "
                             f"this machine has {n}: use fewer workers or threads")
    return t


@dataclass
class Cluster:
    """A connected client and what every task should know about its workers."""

    client: object  # dask.distributed.Client
    threads: int  # torch threads per task
    label: str

    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))


@contextmanager
def open_cluster(scheduler: str | SchedulerSpec | None = None, client=None, threads: int | None = None,
                 log: Callable[[str], None] = print) -> Iterator[Cluster]:
    """Connect (or start ``local:K``) for one command; prints the dashboard address once.

    A ``client`` given by the caller is used as it is and left open. An unreachable scheduler is a
    :class:`RunError` after :data:`CONNECT_TIMEOUT` seconds, before anything is written.
    """
    if (scheduler is None) == (client is None):
        raise UserInputError("give exactly one of scheduler and client")
    spec = parse_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
    threads = check_threads(threads, spec)
    from distributed import Client, LocalCluster

    if client is not None:
        yield Cluster(client, threads or 1, "the given client")
        return
    local = None
    try:
        if spec.kind == "local":
            local = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
            client = Client(local)
        else:
            kw = {"scheduler_file": spec.address} if spec.kind == "file" else {"address": spec.address}
            client = Client(**kw, timeout=f"{CONNECT_TIMEOUT}s")
    except (OSError, TimeoutError) as err:
        if local is not None:
            local.close()
        raise RunError(f"cannot reach the Dask scheduler at {spec} (no answer within {CONNECT_TIMEOUT:g} s: "
                       f"{type(err).__name__})") from None
    try:
        services = client.scheduler_info().get("services", {})
        link = client.dashboard_link if "dashboard" in services else "not running (pip install bokeh for it)"
        log(f"Dask scheduler {client.scheduler.address}, dashboard {link}")
        yield Cluster(client, threads or 1, str(spec))
    finally:
        client.close()
        if local is not None:
            local.close()
