"""The client side of a sharded command: check, lock, cut, submit every shard of every run at
once, follow them on one bar, merge each run when its shards are done.

Order matters for "bad input changes nothing": every argument is checked and the scheduler is
reached before any run folder is touched; a shard task that fails leaves the finished shards in
place for ``--resume``.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from distributed import as_completed

from randstruct import store
from randstruct.distributed.faults import task_failure
from randstruct.distributed.merge import merge_analysis, merge_training
from randstruct.distributed.progress import ClusterBar
from randstruct.distributed.scheduler import Cluster, open_cluster, parse_scheduler
from randstruct.distributed.shards import (SHARDS, Shard, check_shard_size, cut, default_shard_size, read_layout,
                                           write_layout)
from randstruct.distributed.worker import ANALYSIS, AnalysisJob, ShardJob, analyze_shard, train_shard
from randstruct.runs import KIND, Run, RunSpec, load


@dataclass
class RunJob:
    """One run of a command: what to train where, and how its folder is to be treated."""

    spec: RunSpec
    out: Path
    overwrite: bool = False
    resume: bool = False
    label: str = ""
    shards: list[Shard] = field(default_factory=list)


def check_options(scheduler, client, shard_size, checkpoint_every) -> None:
    """Everything checkable before contacting a scheduler."""
    if scheduler is not None:
        parse_scheduler(scheduler)
    if shard_size is not None:
        check_shard_size(shard_size)
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or int(checkpoint_every) != checkpoint_every
                                         or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a whole number >= 1, got {checkpoint_every!r}")


def execute(spec: RunSpec, out: str | Path, overwrite: bool = False, resume: bool = False, progress: bool = True,
            checkpoint_every: int | None = None, scheduler: str | None = None, client=None,
            shard_size: int | None = None, threads: int | None = None, log: Callable[[str], None] = print) -> Run:
    """``runs.execute`` on a Dask cluster (see there); returns the merged run."""
    check_options(scheduler, client, shard_size, checkpoint_every)
    with open_cluster(scheduler, client, threads, log) as cluster:
        job = RunJob(spec, Path(out), overwrite, resume, label=str(out))
        return train_runs(cluster, [job], shard_size, checkpoint_every, progress, log)[0]


def train_many(items: list[tuple[str, RunSpec, Path, bool]], scheduler: str | None = None, client=None,
               shard_size: int | None = None, threads: int | None = None, progress: bool = True,
               log: Callable[[str], None] = print, cluster: Cluster | None = None) -> list[Run]:
    """Train (label, spec, path, resume) runs at once on a cluster (``cluster``, or one opened here)."""
    jobs = [RunJob(spec, Path(path), resume=resume, label=label) for label, spec, path, resume in items]
    if cluster is not None:
        return train_runs(cluster, jobs, shard_size, None, progress, log)
    check_options(scheduler, client, shard_size, None)
    with open_cluster(scheduler, client, threads, log) as opened:
        return train_runs(opened, jobs, shard_size, None, progress, log)


def _prepare(job: RunJob, shard_size: int | None, n_workers: int) -> None:
    """Check and set up one run folder (the caller holds its lock): config.json and the shard layout."""
    out, spec = job.out, job.spec
    checkpoint = store.prepare_run_dir(out, KIND, spec.to_dict(), job.overwrite, job.resume)
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
        job.shards = shards
        return
    size = shard_size or default_shard_size(n_members, n_workers)
    if job.overwrite:
        store.clear_run_dir(out)
    if not job.resume:
        store.write_json_atomic(out / store.CONFIG, store.new_config(KIND, spec.to_dict()))
    job.shards = cut(n_members, size)
    write_layout(out, size, job.shards)


def _cost(spec: RunSpec, shard: Shard) -> int:
    """A shard's work in arbitrary units (members x N^2 x steps x epochs): big shards start first."""
    return shard.size * spec.n ** 2 * spec.make_task().n_steps * spec.train.epochs


def train_runs(cluster: Cluster, jobs: list[RunJob], shard_size: int | None = None,
               checkpoint_every: int | None = None, progress: bool = True,
               log: Callable[[str], None] = print) -> list[Run]:
    """Train every shard of every run in ``jobs`` at once on ``cluster``; merge each run when done.

    The client holds each run folder's lock for the whole call. Completed runs are not touched
    (the caller decides reuse). Raises :class:`RunError` with one line if a shard task fails.
    """
    client = cluster.client
    start = time.perf_counter()
    with ExitStack() as locks:
        for job in jobs:
            job.out = job.out.absolute()
            locks.enter_context(store.run_lock(job.out, "train (sharded)"))
        for job in jobs:
            _prepare(job, shard_size, cluster.n_workers())
        topic = f"randstruct-progress-{uuid.uuid4().hex}"
        futures, owner, sizes, done = {}, {}, {}, {}
        for i, job in enumerate(jobs):
            spec_dict = job.spec.to_dict()
            for shard in job.shards:
                key = f"train-{job.out.name}-shard{shard.index}-{uuid.uuid4().hex[:8]}"
                sizes[key] = (job.spec.train.epochs, shard.size)
                if store.is_complete(shard.path(job.out)):
                    done[key] = job.spec.train.epochs
                task = ShardJob(str(job.out), spec_dict, shard, cluster.threads, checkpoint_every, topic, key)
                fut = client.submit(train_shard, task, key=key, pure=False, priority=_cost(job.spec, shard))
                futures[fut] = (i, shard)
                owner[key] = fut
        n_shards = len(futures)
        log(f"{n_shards} shard{'s' * (n_shards != 1)} of {len(jobs)} run{'s' * (len(jobs) != 1)} on {cluster.label} "
            f"({cluster.n_workers()} workers, {cluster.threads} torch thread{'s' * (cluster.threads != 1)} per task)")
        if done:
            log(f"{len(done)} of {n_shards} shards already finished: reused")
        bar = ClusterBar(client, topic, sizes, done, desc="shards", enabled=progress)
        remaining = {i: len(job.shards) for i, job in enumerate(jobs)}
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
                    merge_training(job.out, job.shards, time.perf_counter() - start)
                    _drop_shard_stores(job.out, job.shards)
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
def analyze_runs(cluster: Cluster, items: list[tuple[Run, dict]], shard_size: int | None = None,
                 force: bool = False, progress: bool = True, log: Callable[[str], None] = print) -> list:
    """``analysis.analyze_run`` for every (run, keyword arguments of ``analyze``) at once, each
    run's shards on the workers.

    Returns each run's analysis Dataset. A run whose analysis is stored with these parameters is
    not recomputed unless ``force``.
    """
    runs = [run for run, _ in items]
    from randstruct.analysis.run import stored_analysis, store_analysis

    client = cluster.client
    results: dict[int, object] = {}
    with ExitStack() as locks:
        todo = []
        for i, (run, params) in enumerate(items):
            keys = ("ranks", "shuffles", "eval_trials", "eval_policy", "threshold")
            done = None if force else stored_analysis(run, **{k: params[k] for k in keys})
            if done is not None:
                results[i] = done
                continue
            locks.enter_context(store.run_lock(Path(run.path).absolute(), "analyze (sharded)"))
            n = run.data.sizes["net"]
            layout = read_layout(run.path)
            shards = layout[1] if layout is not None and shard_size is None else cut(
                n, shard_size or default_shard_size(n, cluster.n_workers()))
            todo.append((i, run, shards, params))
        futures = {}
        for i, run, shards, params in todo:
            for shard in shards:
                task = AnalysisJob(str(Path(run.path).absolute()), shard, params, cluster.threads)
                fut = client.submit(analyze_shard, task, key=f"analyze-{Path(run.path).name}-shard{shard.index}-"
                                                            f"{uuid.uuid4().hex[:8]}", pure=False)
                futures[fut] = (i, shard)
        if futures:
            log(f"analysing {len(futures)} shards of {len(todo)} runs on {cluster.label}")
        from tqdm.auto import tqdm

        with tqdm(total=len(futures), unit="shard", desc="analyze", disable=not progress) as bar:
            for fut in as_completed(list(futures)):
                i, shard = futures[fut]
                if fut.status != "finished":
                    message = _failure(f"analysis of shard {shard.index} of {runs[i].path}", fut)
                    for other in futures:
                        other.cancel()
                    raise store.RunError(message)
                bar.update(1)
        for i, run, shards, _ in todo:
            parts = [store.open_results(s.path(run.path) / ANALYSIS) for s in shards]
            merged, where = merge_analysis(parts)
            merged.attrs = {}
            results[i] = store_analysis(run, merged)
            for s in shards:
                shutil.rmtree(s.path(run.path) / ANALYSIS, ignore_errors=True)
                try:
                    s.path(run.path).rmdir()
                except OSError:
                    pass
            log(f"{run.path}: analysis of {len(shards)} shards merged "
                f"({sum(w['wall_time_s'] for w in where):.1f} s of worker time)")
    return [results[i] for i in range(len(runs))]


def analysis_params(**given) -> dict:
    """Keyword arguments of ``analysis.run.analyze``: its defaults, updated with ``given``."""
    import inspect

    from randstruct.analysis.run import analyze

    defaults = {name: p.default for name, p in inspect.signature(analyze).parameters.items()
                if p.default is not inspect.Parameter.empty and name != "progress"}
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown analysis parameter {sorted(unknown)[0]!r}; allowed: {', '.join(defaults)}")
    return {**defaults, **given}


def analyze_run(run: Run, params: dict, force: bool = False, progress: bool = True, scheduler: str | None = None,
                client=None, shard_size: int | None = None, threads: int | None = None,
                log: Callable[[str], None] = print):
    check_options(scheduler, client, shard_size, None)
    with open_cluster(scheduler, client, threads, log) as cluster:
        return analyze_runs(cluster, [(run, params)], shard_size, force, progress, log)[0]
