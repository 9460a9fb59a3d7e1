"""Cutting a grid into shards and the shard lease, without a cluster."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import randstruct as rs
from randstruct.executors.faults import ShardLease
from randstruct.executors.scheduler import check_threads, parse_scheduler
from randstruct.executors.shards import Shard, cut, default_shard_size, members, shard_ensemble


def _spec(**kw):
    return rs.RunSpec(task="flipflop", n=9, g=(0.0, 0.9, 1.8), seeds=(3, 5, 7),
                      train=rs.TrainConfig(epochs=2, batch_size=2), **kw)


@pytest.mark.parametrize("size", [1, 2, 4, 9, 20])
def test_shards_cover_the_members_in_ensemble_order_and_build_exactly_those_networks(size):
    spec = _spec()
    whole = spec.make_ensemble()
    shards = cut(9, size)
    assert [s.lo for s in shards] == list(range(0, 9, size)) and shards[-1].hi == 9
    assert all(a.hi == b.lo for a, b in zip(shards, shards[1:]))
    g, seed = members(spec)
    np.testing.assert_array_equal(g, whole.g)
    np.testing.assert_array_equal(seed, whole.seed)
    for s in shards:  # shards of 4 cross g values: built block by block, yet the same bits
        part = shard_ensemble(spec, s)
        ref = whole.select(slice(s.lo, s.hi))
        np.testing.assert_array_equal(part.g, ref.g)
        np.testing.assert_array_equal(part.seed, ref.seed)
        for name in ("wi", "wrec", "wo", "b", "x0", "w0"):
            assert torch.equal(getattr(part, name), getattr(ref, name)), (s, name)


def test_shared_vector_runs_shard_the_same_way():
    spec = rs.RunSpec(task="cosine", n=8, g=(0.0, 0.4), seeds=2, nonlinearity="linear", shared_vector=True,
                      x0_from_input=True, train=rs.TrainConfig(epochs=1, batch_size=1))
    whole = spec.make_ensemble()
    part = shard_ensemble(spec, Shard(0, 1, 3))
    for name in ("wi", "wo", "x0", "w0"):
        assert torch.equal(getattr(part, name), getattr(whole, name)[1:3])


def test_default_shard_size_gives_every_worker_two_shards():
    for n_members, workers in [(15, 2), (6, 2), (145, 10), (3, 4), (1, 1)]:
        size = default_shard_size(n_members, workers)
        assert len(cut(n_members, size)) >= min(n_members, 2 * workers)
        assert size >= 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_shard_size_below_one_or_not_a_count_is_refused(bad):
    with pytest.raises(ValueError, match="shard size must be an integer >= 1"):
        cut(5, bad)


@pytest.mark.parametrize("text", ["local:0", "local:x", "local:", "local:-2", "nowhere", ""])
def test_bad_scheduler_values_are_refused_without_contacting_anything(text):
    with pytest.raises(ValueError, match="scheduler"):
        parse_scheduler(text)


def test_scheduler_values_that_parse():
    assert parse_scheduler("local:3").workers == 3
    assert parse_scheduler("tcp://10.1.2.3:8786").address == "tcp://10.1.2.3:8786"
    assert parse_scheduler("node7:8786").kind == "address"
    with pytest.raises(ValueError, match="cores"):
        check_threads(None, parse_scheduler(f"local:{os.cpu_count() * 4 + 1}"))
    with pytest.raises(ValueError, match="threads must be"):
        check_threads(0, None)


def test_the_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = tmp_path / "shards" / "0"
    folder.parent.mkdir(parents=True)
    (tmp_path / "shards" / "0.lease").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": int(dead.stdout), "purpose": "train shard 0", "token": "x", "beat": 3}))
    start = time.monotonic()
    with ShardLease(folder, "train shard 0", ttl=30) as lease:
        assert lease.taken_over["pid"] == int(dead.stdout)
        assert json.loads((tmp_path / "shards" / "0.lease").read_text())["pid"] == os.getpid()
    assert time.monotonic() - start < 5
    assert not (tmp_path / "shards" / "0.lease").exists()


def test_a_lease_from_another_host_is_taken_over_only_when_its_heartbeat_stops(tmp_path):
    folder = tmp_path / "0"
    lease_file = tmp_path / "0.lease"
    record = {"host": "elsewhere", "pid": 1, "purpose": "train shard 0", "token": "y", "beat": 0}
    lease_file.write_text(json.dumps(record))
    stop = threading.Event()

    def beat():  # a live holder elsewhere: its counter moves, so it is waited for
        while not stop.wait(0.05):
            record["beat"] += 1
            lease_file.write_text(json.dumps(record))

    t = threading.Thread(target=beat)
    t.start()
    got = {}
    waiter = threading.Thread(target=lambda: got.setdefault("lease", ShardLease(folder, "w", ttl=0.5, poll=0.05)
                                                             .acquire()))
    waiter.start()
    waiter.join(1.5)
    assert waiter.is_alive(), "took over a lease whose heartbeat was still moving"
    stop.set()
    t.join()
    waiter.join(5)
    assert not waiter.is_alive() and got["lease"].taken_over["host"] == "elsewhere"
    got["lease"].release()


def test_a_live_holder_in_this_host_is_waited_for(tmp_path):
    first = ShardLease(tmp_path / "0", "first", beat=0.05).acquire()
    threading.Timer(0.4, first.release).start()
    start = time.monotonic()
    with ShardLease(tmp_path / "0", "second", ttl=30, poll=0.05) as second:
        assert second.taken_over is None
    assert time.monotonic() - start >= 0.35


def test_an_analysis_of_a_shard_does_not_wait_for_another_analysis_of_that_shard(tmp_path, monkeypatch):
    """While one analysis of a shard is being computed, another analysis of the same shard runs at
    once: on a cluster a task waiting for a lease holds a worker slot (the issue-24 hang)."""
    from randstruct.analysis.apply import requests
    from randstruct.executors import worker

    spec = rs.RunSpec(task="flipflop", n=6, g=(0.5,), seeds=2, train=rs.TrainConfig(epochs=2, batch_size=2))
    run = rs.execute(spec, tmp_path / "run", progress=False)
    shard = cut(2, 1)[0]
    inside, leave, compute = threading.Event(), threading.Event(), worker.compute

    def slow_alignment(part, request, device):
        if request[0].name == "alignment":
            inside.set()
            leave.wait()
        return compute(part, request, device)

    monkeypatch.setattr(worker, "compute", slow_alignment)
    jobs = {r[0].name: worker.AnalysisJob(str(run.path), shard, r, 1, "cpu")
            for r in requests(["alignment", "regime"], {"alignment": {"grace": 2.0, "eval_trials": 2},
                                                         "regime": {"grace": 2.0, "eval_trials": 2}})}
    got = {}
    threads = {name: threading.Thread(target=lambda name=name: got.setdefault(name, worker.analyze_shard(jobs[name])),
                                      daemon=True) for name in jobs}
    threads["alignment"].start()
    try:
        assert inside.wait(60)
        threads["regime"].start()
        threads["regime"].join(30)
        assert not threads["regime"].is_alive(), "the regime analysis waited for the alignment analysis"
    finally:
        leave.set()
    threads["alignment"].join(60)
    assert sorted(Path(got[name]["path"]).name for name in jobs) == ["analysis-alignment", "analysis-regime"]
