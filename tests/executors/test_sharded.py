"""Sharded runs on a LocalCluster: the same bits as one process, through lost workers, killed
clients, concurrent writers and bad input."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import randstruct as rs
from randstruct import store
from randstruct.analysis import analyze_run
from randstruct.executors.cluster import DaskExecutor
from randstruct.runs import TrainJob

pytest.importorskip("distributed")

SPEC = rs.RunSpec(task="flipflop", n=12, g=(0.0, 0.9, 1.8), seeds=(0, 1),
                  train=rs.TrainConfig(epochs=24, batch_size=8, rec_step=4))
LINEAR = rs.RunSpec(task="simple", n=16, g=(0.3, 0.6), seeds=2, nonlinearity="linear",
                    train=rs.TrainConfig(epochs=12, batch_size=1, optimizer="sgd", lr_rule="linear_gain", lr0=0.01,
                                         trainable=("wrec",), sv_top=2, eig_top=3, record_weights=True))
OWN_ATTRS = ("train_wall_time_s", "cluster_wall_time_s", "cluster_network_epochs", "shards")  # times, hosts, the cut


def assert_same_store(a: Path, b: Path) -> None:
    """Every variable and coordinate bitwise (NaNs in the same places), same dtypes, same attributes
    apart from wall times and where the shards ran."""
    x, y = store.open_results(a), store.open_results(b)
    assert sorted(x.variables) == sorted(y.variables)
    for name in x.variables:
        u, v = x[name].values, y[name].values
        assert u.dtype == v.dtype and u.shape == v.shape, name
        assert np.array_equal(u, v, equal_nan=u.dtype.kind in "fc"), name
        assert x[name].attrs == y[name].attrs, name
    assert {k: v for k, v in x.attrs.items() if k not in OWN_ATTRS} == \
           {k: v for k, v in y.attrs.items() if k not in OWN_ATTRS}


def in_process(spec, path):
    torch.set_num_threads(1)  # the workers' thread count: then the bits must agree
    return rs.execute(spec, path, progress=False)


def test_sharded_training_of_two_runs_at_once_is_bitwise_the_one_process_run(cluster, tmp_path):
    one = [in_process(SPEC, tmp_path / "one_ff"), in_process(LINEAR, tmp_path / "one_lin")]
    # shards of 4 networks cross a g boundary; the linear run uses the subspace tracker and eigenvalues
    with DaskExecutor(client=cluster, shard_size=3, log=lambda s: None) as executor:
        runs = executor.train([TrainJob(SPEC, tmp_path / "ff", label="ff"), TrainJob(LINEAR, tmp_path / "lin", label="lin")],
                              progress=False)
    for ref, run in zip(one, runs):
        assert_same_store(ref.path, run.path)
        shards = json.loads(run.data.attrs["shards"])
        assert [s["members"] for s in shards] == [[lo, min(lo + 3, run.data.sizes["net"])]
                                                   for lo in range(0, run.data.sizes["net"], 3)]
        assert all(s["host"] and s["device"].startswith("cpu") and s["wall_time_s"] > 0 for s in shards)
        assert sorted(os.listdir(run.path / "shards")) == ["layout.json"]  # shard stores dropped once merged
    # analysis per shard on the workers, merged: the same bits as analysing in one process
    params = dict(ranks=4, shuffles=2, eval_trials=16)
    analyze_run(one[0], progress=False, **params)
    with DaskExecutor(client=cluster, shard_size=2, log=lambda s: None) as executor:
        analyze_run(runs[0], progress=False, executor=executor, **params)
    assert_same_store(one[0].path, runs[0].path)
    assert "functional_rank" in store.open_results(runs[0].path)


NOISY = rs.RunSpec(task="flipflop", n=12, g=(0.5, 1.2), seeds=(0, 1, 2), nonlinearity="relu", noise_rec=0.2,
                   noise_x0=1.0, noise_in=0.1, readout="large", dale=0.8, sparsity=0.3,
                   train=rs.TrainConfig(epochs=8, batch_size=4, rec_step=2, l2_dw=1e-3, l2_rates=1e-4))


def test_sharded_training_with_noise_dale_and_sparsity_is_bitwise_the_one_process_run(cluster, tmp_path):
    """Every noise draw comes from its member's own stream: shards of 2 (crossing g) change no bit."""
    one = in_process(NOISY, tmp_path / "one")
    with DaskExecutor(client=cluster, shard_size=2, log=lambda s: None) as executor:
        (run,) = executor.train([TrainJob(NOISY, tmp_path / "sharded", label="noisy")], progress=False)
    assert_same_store(one.path, run.path)
    assert "penalty" in run.data


def test_a_worker_killed_mid_shard_costs_at_most_one_checkpoint_interval(cluster, tmp_path):
    spec = rs.RunSpec(task="flipflop", n=12, g=(0.9,), seeds=2, train=rs.TrainConfig(epochs=400, batch_size=8))
    ref = in_process(spec, tmp_path / "one")
    out = tmp_path / "killed"
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool, DaskExecutor(client=cluster, shard_size=2, log=lambda s: None) as executor:
        job = pool.submit(lambda: rs.execute(spec, out, progress=False, checkpoint_every=25, executor=executor))
        ckpt = out / "shards" / "0" / store.CHECKPOINT
        deadline = time.monotonic() + 60
        while not ckpt.is_file() and time.monotonic() < deadline and not job.done():
            time.sleep(0.01)
        assert ckpt.is_file(), "the shard finished or failed before it could be interrupted"
        saved = torch.load(ckpt, weights_only=False)["epoch"]
        busy = [addr for addr, keys in cluster.processing().items() if keys]
        pid = cluster.run(os.getpid, workers=busy)[busy[0]]
        os.kill(pid, signal.SIGKILL)
        run = job.result(timeout=120)
    assert_same_store(ref.path, run.path)
    (shard,) = json.loads(run.data.attrs["shards"])
    starts = [s["epoch"] for s in shard["starts"]]
    assert len(starts) == 2 and starts[0] == 0
    assert saved <= starts[1] < spec.train.epochs and starts[1] % 25 == 0  # resumed from its last checkpoint


TRAIN = [sys.executable, "-m", "randstruct", "train", "--task", "flipflop", "--N", "12", "--g", "0,0.9,1.8",
         "--seeds", "2", "--epochs", "160", "--batch", "8", "--checkpoint-every", "20", "--no-progress"]
CLI = TRAIN + ["--shard-size", "2"]


def _env():
    return {**os.environ, "PYTHONPATH": str(Path(rs.__file__).parents[1])}


def test_a_killed_client_then_resume_reuses_finished_shards_and_resumes_the_rest(cluster, tmp_path):
    address = cluster.scheduler.address
    out = tmp_path / "run"
    cmd = CLI + ["--scheduler", address, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(store.is_complete(out / "shards" / str(k)) for k in range(3)):
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole command, as a terminal's kill would
        proc.wait()
    finished = [k for k in range(3) if store.is_complete(out / "shards" / str(k))]
    assert finished and not store.is_complete(out), "killed too late to test a resume"
    again = subprocess.run(cmd + ["--resume"], env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already finished" in again.stdout
    spec = rs.load(out).spec
    ref = in_process(spec, tmp_path / "one")
    assert_same_store(ref.path, out)
    shards = json.loads(rs.load(out).data.attrs["shards"])
    assert all(len(s["starts"]) == 1 for k, s in enumerate(shards) if k in finished)  # reused, not retrained


def _main(args, capsys):
    """The CLI in this process: exit code and its stderr lines."""
    from randstruct.cli import main

    rc = main(args)
    return rc, capsys.readouterr().err.strip().splitlines()


def test_a_second_writer_of_the_same_run_is_refused_and_changes_nothing(cluster, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    # the first writer: a live process on this host (our parent) named in the run's lock
    owner = {"host": socket.gethostname(), "pid": os.getppid(), "purpose": "train", "started": "2026-12-01T00:00:00"}
    (out / store.LOCK).write_text(json.dumps(owner) + "\n")
    rc, err = _main(CLI[3:] + ["--scheduler", cluster.scheduler.address, "--out", str(out)], capsys)
    assert rc == 2
    assert len(err) == 1 and "in use by train" in err[0] and str(os.getppid()) in err[0], err
    assert sorted(p.name for p in out.iterdir()) == [store.LOCK]
    assert json.loads((out / store.LOCK).read_text()) == owner


def test_an_unreachable_scheduler_is_one_line_within_ten_seconds_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    start = time.monotonic()
    rc, err = _main(CLI[3:] + ["--scheduler", "tcp://127.0.0.1:9", "--out", str(out)], capsys)
    assert time.monotonic() - start < 10
    assert rc == 2
    assert len(err) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [(["--scheduler", "local:0"], "local:K needs"),
                                            (["--scheduler", "local:x"], "local:K needs"),
                                            (["--scheduler", "local:1", "--shard-size", "0"], "--shard-size must be"),
                                            (["--shard-size", "2"], "--shard-size needs --scheduler")])
def test_bad_cluster_options_are_one_line_exit_2_and_nothing_written(tmp_path, capsys, extra, message):
    from randstruct.cli import main

    out = tmp_path / "run"
    args = TRAIN[3:] + extra + ["--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_a_task_that_raises_on_a_worker_is_one_line_at_the_client(cluster, tmp_path, capsys):
    out = tmp_path / "run"  # the workers have no GPU: every shard task raises there, not here
    rc, err = _main(CLI[3:] + ["--device", "cuda", "--scheduler", cluster.scheduler.address, "--out", str(out)], capsys)
    assert rc == 2
    assert len(err) == 1 and "failed on a worker" in err[0] and "cuda" in err[0].lower(), err
    assert not store.is_complete(out)


BLOCK_DASK = """
import sys
sys.modules["dask"] = sys.modules["distributed"] = None  # as if not installed: import fails, find_spec is None
"""


def test_the_in_process_path_needs_no_dask(tmp_path):
    """xarray itself imports dask whenever it is installed (its duck-array checks), so the test
    hides dask and distributed instead: train, analyze and info must work without them, and of the
    executors only the in-process one may be imported."""
    out = str(tmp_path / "r")
    code = BLOCK_DASK + f"""
from randstruct.cli import main
assert main(['train', '--task', 'flipflop', '--N', '6', '--g', '0.5', '--epochs', '4', '--batch', '2',
             '--out', {out!r}, '--no-progress']) == 0
assert main(['analyze', {out!r}, '--ranks', '2', '--shuffles', '1', '--eval-trials', '4', '--no-progress']) == 0
bad = [m for m, mod in sys.modules.items() if mod is not None and
       (m.split('.')[0] in ('dask', 'distributed') or (m.startswith('randstruct.executors.') and
                                                        m != 'randstruct.executors.local'))]
assert not bad, bad
"""
    res = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_sharded_neurogym_training_is_bitwise_the_one_process_run(cluster, tmp_path):
    """A NeuroGym task makes its batches ahead in worker processes, which a daemonic Dask worker may
    not start: there they are made on the training thread, the same batches (issue 22 item 1)."""
    pytest.importorskip("neurogym")
    spec = rs.RunSpec(task="neurogym:PerceptualDecisionMaking-v0", n=12, g=(0.0, 0.9), seeds=2,
                      train=rs.TrainConfig(epochs=6, batch_size=4, loss="cross_entropy"))
    ref = in_process(spec, tmp_path / "one")
    with DaskExecutor(client=cluster, shard_size=2, log=lambda s: None) as executor:
        run = rs.execute(spec, tmp_path / "sharded", progress=False, executor=executor)
    assert_same_store(ref.path, run.path)


def test_a_sharded_run_the_trainer_would_refuse_leaves_no_folder(cluster, tmp_path):
    """The pre-write checks of a run in one process hold for a sharded one too (issue 28 item 3)."""
    spec = rs.RunSpec(task="flipflop", n=8, g=(0.5,), seeds=2,
                      train=rs.TrainConfig(epochs=2, batch_size=2, loss="cross_entropy"))
    out = tmp_path / "refused"
    with DaskExecutor(client=cluster, shard_size=1, log=lambda s: None) as executor:
        with pytest.raises(ValueError, match="cross_entropy"):
            rs.execute(spec, out, progress=False, executor=executor)
    assert not out.exists()


def test_sharded_alignment_regime_and_noise_equal_the_in_process_analysis(cluster, tmp_path):
    """The per-member regime plug-ins per shard on the workers, merged: the same values as in one
    process (a state readout with noise, as the 2024 paper's networks)."""
    from randstruct.analysis import run_analyses

    spec = rs.RunSpec(task="flipflop", n=12, g=(0.7,), seeds=3, train=rs.TrainConfig(epochs=8, batch_size=4),
                      noise_rec=0.2, noise_x0=1.0, readout_from="state")
    one = in_process(spec, tmp_path / "one")
    two = in_process(spec, tmp_path / "two")
    names = ["alignment", "regime", "noise"]
    params = {"alignment": {"grace": 2.0}, "noise": {"grace": 2.0, "conditions": 2, "repeats": 3}}
    run_analyses(one, names, params, progress=False)
    before = len(cluster.get_events("worker-get-client"))
    with DaskExecutor(client=cluster, shard_size=1, log=lambda s: None) as executor:
        run_analyses(two, names, params, progress=False, executor=executor)
    # a shard task that computes through the cluster (dask inside a task opens a worker client) can
    # wait for a worker slot held by a task that waits for it: it once hung here forever
    assert len(cluster.get_events("worker-get-client")) == before, "a shard task sent work to the cluster"
    a, b = rs.load(one.path).data, rs.load(two.path).data
    added = [v for v in a.data_vars if v.startswith(("align_", "regime_", "noise_"))]
    assert len(added) > 20 and "noise_compression" in added
    for name in added:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_the_2024_sweep_on_a_cluster_equals_the_sweep_in_one_process(cluster, tmp_path, monkeypatch):
    """reproduce --paper oblique2024 --scheduler: every run's shards trained and analysed on the
    workers (similarity in the client) give the table of the in-process sweep, value for value."""
    import dataclasses

    from randstruct.paper.oblique2024 import experiments, reproduce
    from randstruct.paper.oblique2024.results import table

    def tiny(scale, device="cpu"):
        return {label: dataclasses.replace(spec, n=10, seeds=(0, 1), train=dataclasses.replace(spec.train, epochs=2))
                for label, spec in list(experiments.neuro("smoke", device).items())[:4]}

    monkeypatch.setattr(reproduce, "neuro", tiny)
    here = reproduce.train_and_analyse("smoke", tmp_path / "here", "cpu", False, lambda s: None, None)
    with DaskExecutor(client=cluster, shard_size=2, log=lambda s: None) as executor:
        there = reproduce.train_and_analyse("smoke", tmp_path / "there", "cpu", False, lambda s: None, executor)
    a, b = table(here), table(there)
    assert np.isfinite(a.rho.sel(task=["cycling", "flipflop"]).values).all()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
