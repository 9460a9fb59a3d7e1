"""What runs on a Dask worker: train one shard into its folder, or analyse one shard.

Every function here is idempotent and resumable: a finished shard is reused, an unfinished one
continues from its checkpoint, so Dask may rerun a task on another worker after a crash.
"""

from __future__ import annotations

import json
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import xarray as xr

from randstruct import store
from randstruct.executors.faults import ShardLease
from randstruct.executors.progress import Reporter
from randstruct.executors.shards import SHARD_KIND, Shard, shard_ensemble, shard_spec
from randstruct.engine.device import check_device
from randstruct.analysis.apply import compute, stored_key
from randstruct.runs import Run, RunSpec, load, start_run, train_into

STARTS = "starts.json"
ANALYSIS = "analysis"  # analysis-<name>/: a folder holding the shard's analysis as results.zarr


@dataclass(frozen=True)
class ShardJob:
    """One shard task: where, which members, and how."""

    run_dir: str
    spec: dict
    shard: Shard
    threads: int
    checkpoint_every: int | None
    topic: str
    key: str


def _where(device: str) -> dict:
    if torch.device(device).type == "cuda":
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    try:
        from distributed import get_worker

        worker = get_worker().name
    except (ImportError, ValueError):  # not inside a Dask task
        worker = None
    return {"host": socket.gethostname(), "worker": worker, "device": name}


def _visible(run_dir: Path) -> None:
    if not (run_dir / store.CONFIG).is_file():
        raise store.RunError(f"{run_dir} is not visible from worker {socket.gethostname()}: the run folder must be "
                             f"on a filesystem every worker shares, given as an absolute path")


def train_shard(job: ShardJob) -> dict:
    """Train (or resume, or reuse) one shard; returns what the merged store records about it."""
    torch.set_num_threads(job.threads)
    run_dir = Path(job.run_dir)
    _visible(run_dir)
    spec = RunSpec.from_dict(job.spec)
    check_device(spec.device)
    folder, wanted = job.shard.path(run_dir), shard_spec(spec, job.shard)
    with ShardLease(folder, f"train shard {job.shard.index}") as lease:
        if store.is_complete(folder) and store.read_config(folder)["spec"] == json.loads(json.dumps(wanted)):
            return shard_info(folder)
        checkpoint = start_run(folder, SHARD_KIND, wanted, overwrite=False, resume=(folder / store.CONFIG).is_file())
        where = _where(spec.device)
        epoch = 0 if checkpoint is None else int(checkpoint["epoch"])
        start = {"epoch": epoch, **where, "time": time.time()}
        if lease.taken_over is not None:  # the lease of a dead or silent writer: say whose
            start["took_over"] = {k: lease.taken_over.get(k) for k in ("host", "pid", "purpose")}
        starts = _starts(folder) + [start]
        store.write_json_atomic(folder / STARTS, {"starts": starts})
        report = Reporter(job.topic, job.key)
        report.start(epoch)
        train_into(folder, spec, shard_ensemble(spec, job.shard), checkpoint, progress=False,
                   checkpoint_every=job.checkpoint_every, on_epoch=report,
                   attrs={"shard": json.dumps({"index": job.shard.index, "members": [job.shard.lo, job.shard.hi],
                                                **where, "starts": starts})})
        return shard_info(folder)


def _starts(folder: Path) -> list[dict]:
    path = folder / STARTS
    return json.loads(path.read_text())["starts"] if path.is_file() else []


def shard_info(folder: Path) -> dict:
    """Index, members, host, device, restarts and training wall time of a finished shard."""
    with xr.open_zarr(folder / store.RESULTS, consolidated=True, chunks=None) as ds:
        attrs = dict(ds.attrs)
    return {**json.loads(attrs["shard"]), "wall_time_s": float(attrs["train_wall_time_s"])}


@dataclass(frozen=True)
class AnalysisJob:
    run_dir: str
    shard: Shard
    request: tuple  # (Analysis subclass, its Params)
    threads: int
    device: str


def analyze_shard(job: AnalysisJob) -> dict:
    """Analyse members lo..hi-1 of a finished run into ``shards/<k>/analysis-<name>/`` (reused when
    it already holds the same analysis); returns that folder and where it ran."""
    torch.set_num_threads(job.threads)
    run_dir = Path(job.run_dir)
    _visible(run_dir)
    cls, params = job.request
    path = job.shard.path(run_dir) / f"{ANALYSIS}-{cls.name}"
    # a lease per analysis folder: different analyses of a shard never wait for each other
    with ShardLease(path, f"analyze shard {job.shard.index} ({cls.name})"):
        run = load(run_dir)
        part = Run(run.path, run.config, run.data.isel(net=slice(job.shard.lo, job.shard.hi)))
        key = stored_key(part, job.request)
        if store.is_complete(path):
            with xr.open_zarr(path / store.RESULTS, consolidated=True, chunks=None) as old:
                if old.attrs.get("request") == key:
                    return {"path": str(path), **json.loads(old.attrs["where"])}
        start = time.perf_counter()
        out = compute(part, job.request, job.device)
        where = {**_where(job.device), "index": job.shard.index, "wall_time_s": time.perf_counter() - start}
        out.attrs = {"request": key, "where": json.dumps(where)}
        path.mkdir(parents=True, exist_ok=True)
        store.write_results(path, out)
        return {"path": str(path), **where}
