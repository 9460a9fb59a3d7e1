"""The Dask executor, the client side of a sharded command: check, lock, cut, submit every shard of
every run at once, follow them on one bar, merge each run when its shards are done.

Order matters for "bad input changes nothing": every argument is checked and the scheduler is
reached before any run folder is touched; a shard task that fails leaves the finished shards in
place for ``--resume``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from distributed import as_completed

from randstruct import store
from randstruct.analysis.apply import compute
from randstruct.errors import UserInputError
from randstruct.executors.faults import task_failure
from randstruct.executors.merge import merge_analysis, merge_training
from randstruct.executors.progress import ClusterBar
from randstruct.executors.scheduler import Cluster, open_cluster, parse_scheduler
from randstruct.executors.shards import Shard, check_shard_size, cut, default_shard_size, read_layout, write_layout
from randstruct.executors.worker import AnalysisJob, ShardJob, analyze_shard, train_shard
from randstruct.runs import Run, TrainJob, check_trainable, load, prepare_run


def check_options(scheduler, client, shard_size, checkpoint_every) -> None:
    """Everything checkable before contacting a scheduler."""
    if scheduler is not None:
        parse_scheduler(scheduler)
    if shard_size is not None:
        check_shard_size(shard_size)
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or int(checkpoint_every) != checkpoint_every
                                         or checkpoint_every < 1):
        raise UserInputError(f"checkpoint_every must be a whole number >= 1, got {checkpoint_every!r}")


class DaskExecutor:
    """Shards on a Dask cluster: ``scheduler`` ("local:K", an address or a scheduler file) or a
    ``client`` given by the caller (used as it is and left open); ``shard_size`` networks per shard
    (default: at least two shards per worker); ``threads`` torch threads per task.

    Arguments are checked when it is made; the cluster is reached (or started) when it is entered
    as a context manager, before any run folder is touched, and closed when it is left.
    """

    def __init__(self, scheduler: str | None = None, client=None, shard_size: int | None = None,
                 threads: int | None = None, log: Callable[[str], None] = print):
        if (scheduler is None) == (client is None):
            raise UserInputError("give exactly one of scheduler and client")
        check_options(scheduler, client, shard_size, None)
        self.scheduler, self.client, self.shard_size, self.threads, self.log = (scheduler, client, shard_size,
                                                                              threads, log)
        self.cluster: Cluster | None = None
        self._stack = ExitStack()

    def __enter__(self) -> "DaskExecutor":
        self.cluster = self._stack.enter_context(open_cluster(self.scheduler, self.client, self.threads, self.log))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
        self.cluster = None

    def _connected(self) -> Cluster:
        if self.cluster is None:
            raise RuntimeError("a DaskExecutor is used inside a `with` block (it connects there)")
        return self.cluster

    def train(self, jobs: list[TrainJob], checkpoint_every: int | None = None, progress: bool = True) -> list[Run]:
        """Train every shard of every run in ``jobs`` at once; merge each run when its shards are done."""
        check_options(None, None, None, checkpoint_every)
        return train_runs(self._connected(), jobs, self.shard_size, checkpoint_every, progress, self.log)

    def compute_analyses(self, items: list[tuple[Run, list]], device: str, progress: bool = True) -> list[list]:
        """Every (analysis, parameters) of every run, per shard on the workers, merged in member order;
        an analysis that is not ``shardable`` is computed here on the whole run."""
        return analyze_runs(self._connected(), items, device, self.shard_size, progress, self.log)


def _prepare(job: TrainJob, shard_size: int | None, n_workers: int) -> list[Shard]:
    """Check and set up one run folder (the caller holds its lock): config.json and the shard layout."""
    out, spec = job.out, job.spec
    checkpoint = prepare_run(out, spec, job.overwrite, job.resume)
    if checkpoint is not None:
        raise store.RunError(f"{out} was started in one process (it has {store.CHECKPOINT}); resume it without "
                             f"--scheduler")
    n_members = len(spec.g) * len(spec.seeds)
    layout = read_layout(out) if job.resume else None
    if layout is not None:
        size, shards = layout
        if shard_size is not None and shard_size != size:
            raise store.RunError(f"{out} is cut into shards of {size} networks; resume it with --shard-size {size} "
                                 f"or without --shard-size")
        return shards
    shards = cut(n_members, shard_size or default_shard_size(n_members, n_workers))
    write_layout(out, shards[0].size, shards)
    return shards


def _cost(job: TrainJob, shard: Shard) -> int:
    """A shard's work in arbitrary units (members x N^2 x steps x epochs): big shards start first."""
    spec = job.spec
    return shard.size * spec.n ** 2 * spec.make_task().n_steps * spec.train.epochs


def train_runs(cluster: Cluster, jobs: list[TrainJob], shard_size: int | None = None,
               checkpoint_every: int | None = None, progress: bool = True,
               log: Callable[[str], None] = print) -> list[Run]:
    """Train every shard of every run in ``jobs`` at once on ``cluster``; merge each run when done.

    The client holds each run folder's lock for the whole call. Completed runs are not touched
    (the caller decides reuse). Raises :class:`RunError` with one line if a shard task fails.
    """
    client = cluster.client
    start = time.perf_counter()
    for job in jobs:  # what the trainer would refuse, refused before any folder is written (checked on
        check_trainable(dataclasses.replace(job.spec, device="cpu"))  # this CPU: the workers' devices may be elsewhere
    with ExitStack() as locks:
        jobs = [dataclasses.replace(job, out=Path(job.out).absolute()) for job in jobs]
        for job in jobs:
            locks.enter_context(store.run_lock(job.out, "train (sharded)"))
        shards = [_prepare(job, shard_size, cluster.n_workers()) for job in jobs]
        topic = f"randstruct-progress-{uuid.uuid4().hex}"
        futures, sizes, done = {}, {}, {}
        for i, job in enumerate(jobs):
            spec_dict = job.spec.to_dict()
            for shard in shards[i]:
                key = f"train-{job.out.name}-shard{shard.index}-{uuid.uuid4().hex[:8]}"
                sizes[key] = (job.spec.train.epochs, shard.size)
                if store.is_complete(shard.path(job.out)):
                    done[key] = job.spec.train.epochs
                task = ShardJob(str(job.out), spec_dict, shard, cluster.threads, checkpoint_every, topic, key)
                fut = client.submit(train_shard, task, key=key, pure=False, priority=_cost(job, shard))
                futures[fut] = (i, shard)
        n_shards = len(futures)
        log(f"{n_shards} shard{'s' * (n_shards != 1)} of {len(jobs)} run{'s' * (len(jobs) != 1)} on {cluster.label} "
            f"({cluster.n_workers()} workers, {cluster.threads} torch thread{'s' * (cluster.threads != 1)} per task)")
        if done:
            log(f"{len(done)} of {n_shards} shards already finished: reused")
        bar = ClusterBar(client, topic, sizes, done, desc="shards", enabled=progress)
        remaining = {i: len(s) for i, s in enumerate(shards)}
        runs: dict[int, Run] = {}
        try:
            for fut in as_completed(list(futures)):
                i, shard = futures[fut]
                job = jobs[i]
                if fut.status != "finished":
                    message = _failure(f"shard {shard.index} (networks {shard.lo}-{shard.hi - 1}) of "
                                       f"{job.label or job.out}", fut)
                    for other in futures:
                        other.cancel()
                    raise store.RunError(message)
                bar.advance(fut.key, job.spec.train.epochs, finished=True)
                remaining[i] -= 1
                if remaining[i] == 0:
                    trained = sum(bar.trained[f.key] for f, (j, _) in futures.items() if j == i)
                    merge_training(job.out, shards[i], time.perf_counter() - start, trained)
                    _drop_shard_stores(job.out, shards[i])
                    runs[i] = load(job.out)
        finally:
            bar.close()
        if bar.recomputed:
            log(f"{bar.recomputed} shard-epochs were trained again after a worker was lost")
        return [runs[i] for i in range(len(jobs))]


def _failure(what: str, fut) -> str:
    """One line for a task that did not finish: it raised, its workers died, or the scheduler
    dropped it (a restarted scheduler, a lost connection), where ``exception()`` itself raises."""
    if fut.status == "error":
        return task_failure(what, fut.exception())
    return (f"{what} was {fut.status} by the scheduler (restarted, or the connection was lost); "
            f"finished shards are kept, rerun with --resume")


def _drop_shard_stores(run_dir: Path, shards: list[Shard]) -> None:
    """The merged store holds everything the shards did: keep only the layout and per-shard notes."""
    for s in shards:
        shutil.rmtree(s.path(run_dir), ignore_errors=True)


# ----------------------------------------------------------------------------------------- analysis
def analyze_runs(cluster: Cluster, items: list[tuple[Run, list]], device: str, shard_size: int | None = None,
                 progress: bool = True, log: Callable[[str], None] = print) -> list[list]:
    """The labelled Datasets of every (run, [(analysis, params), ...]), shardable analyses per shard
    on the workers (all runs' shards at once), the others here; in request order per run.
    The caller holds the runs' locks and stores the results."""
    client = cluster.client
    results: list[dict[int, object]] = [{} for _ in items]
    futures = {}
    for i, (run, requests) in enumerate(items):
        run_dir = Path(run.path).absolute()
        n = run.data.sizes["net"]
        layout = read_layout(run_dir)
        shards = layout[1] if layout is not None and shard_size is None else cut(
            n, shard_size or default_shard_size(n, cluster.n_workers()))
        for j, request in enumerate(requests):
            if not request[0].shardable:
                continue
            for shard in shards:
                task = AnalysisJob(str(run_dir), shard, request, cluster.threads, device)
                fut = client.submit(analyze_shard, task, key=f"analyze-{run_dir.name}-{request[0].name}-"
                                                            f"shard{shard.index}-{uuid.uuid4().hex[:8]}", pure=False)
                futures[fut] = (i, j, shard)
    if futures:
        log(f"analysing {len(futures)} shards of {len(items)} run{'s' * (len(items) != 1)} on {cluster.label}")
    from tqdm.auto import tqdm

    parts: dict[tuple[int, int], dict[int, Path]] = {}
    with tqdm(total=len(futures), unit="shard", desc="analyze", disable=not progress) as bar:
        for fut in as_completed(list(futures)):
            i, j, shard = futures[fut]
            if fut.status != "finished":
                message = _failure(f"analysis {items[i][1][j][0].name!r} of shard {shard.index} of {items[i][0].path}",
                                   fut)
                for other in futures:
                    other.cancel()
                raise store.RunError(message)
            parts.setdefault((i, j), {})[shard.index] = Path(fut.result()["path"])
            bar.update(1)
    for (i, j), paths in parts.items():
        folders = [paths[k] for k in sorted(paths)]
        merged, where = merge_analysis([store.open_results(f) for f in folders])
        merged.attrs = {}
        results[i][j] = merged
        for f in folders:
            shutil.rmtree(f, ignore_errors=True)
            try:
                f.parent.rmdir()  # the shard folder, when nothing else is left in it
            except OSError:
                pass
        log(f"{items[i][0].path}: {items[i][1][j][0].name} of {len(folders)} shards merged "
            f"({sum(w['wall_time_s'] for w in where):.1f} s of worker time)")
    for i, (run, requests) in enumerate(items):
        for j, request in enumerate(requests):
            if j not in results[i]:
                results[i][j] = compute(run, request, device, progress)
    return [[results[i][j] for j in range(len(requests))] for i, (_, requests) in enumerate(items)]
