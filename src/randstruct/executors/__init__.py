"""Where work runs: the one front door. An executor trains runs and computes analyses; the caller
picks it and passes it to ``runs.execute``, ``analysis.run_analyses`` or ``paper.reproduce``, so
nothing below this package knows of Dask (and nothing below imports it).

- :class:`~randstruct.executors.local.InProcess`: everything in this process (the default).
- :class:`~randstruct.executors.cluster.DaskExecutor`: sharded ensembles on Dask distributed: one
  run's (g x seed) grid cut into shards of members, each trained (and analysed) as its own
  ensemble on a worker, merged in member order into the run's one ``results.zarr``, bitwise the
  same as training it in one process. Dask is imported only when one is made.

Layout of a sharded run directory::

    config.json             the run's spec, as for a run trained in one process
    results.zarr/           the merged store (written once every shard is done)
    shards/layout.json      the cut: shard size and member ranges (fixed for the run's life)
    shards/<k>/             shard k while it is unfinished: config.json, checkpoint.pt,
                            results.zarr, starts.json (removed once merged)
    shards/<k>.lease        which worker process is writing shard k (see faults.py)
"""

from __future__ import annotations

from typing import Callable

from randstruct.errors import UserInputError
from randstruct.executors.local import InProcess


def make_executor(scheduler: str | None = None, client=None, shard_size: int | None = None,
                  threads: int | None = None, log: Callable[[str], None] = print):
    """:class:`InProcess` without ``scheduler`` and ``client``, else a Dask executor (checked here,
    connected when entered as a context manager)."""
    if scheduler is None and client is None:
        if shard_size is not None or threads is not None:
            raise UserInputError("shard_size and threads apply to sharded runs: give a scheduler or a client too")
        return InProcess()
    from randstruct.executors.cluster import DaskExecutor

    return DaskExecutor(scheduler=scheduler, client=client, shard_size=shard_size, threads=threads, log=log)


def __getattr__(name: str):
    if name == "DaskExecutor":  # imports Dask: only when asked for
        from randstruct.executors.cluster import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DaskExecutor", "InProcess", "make_executor"]
