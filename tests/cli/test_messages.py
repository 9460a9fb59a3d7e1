"""Messages a user acts on (issue 28): the thread advice where it matters."""

import os

import torch

from randstruct.cli import main
from randstruct.cli.common import thread_hint


def _machine(monkeypatch, load, cores=2, threads=2, omp=None):
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)


def test_train_says_omp_num_threads_1_when_the_machine_is_loaded(tmp_path, capsys, monkeypatch):
    _machine(monkeypatch, load=6.5)
    assert main(["train", "--task", "flipflop", "--N", "8", "--g", "0", "--epochs", "2", "--batch", "2",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ("note: this machine is busy (load 6.5 on 2 cores) and torch uses 2 threads; small ensembles run "
            "several times faster here with OMP_NUM_THREADS=1 in front of the command") in out


def test_no_thread_advice_where_it_does_not_apply(monkeypatch):
    _machine(monkeypatch, load=0.2)
    assert thread_hint() is None  # idle
    _machine(monkeypatch, load=6.5, omp="2")
    assert thread_hint() is None  # the user chose
    _machine(monkeypatch, load=6.5, threads=1)
    assert thread_hint() is None  # one thread already
    _machine(monkeypatch, load=6.5)
    assert thread_hint("cuda") is None and thread_hint("cpu") is not None
    _machine(monkeypatch, load=3.0, cores=16, threads=8)
    assert thread_hint() is None  # enough free cores for the threads


def _started_run(tmp_path):
    from randstruct import store
    from randstruct.engine.config import TrainConfig
    from randstruct.runs import RunSpec

    spec = RunSpec(task="flipflop", n=8, g=(0.0,), seeds=(0,), train=TrainConfig(epochs=2))
    out = tmp_path / "run"
    out.mkdir()
    store.write_json_atomic(out / store.CONFIG, store.new_config("rnn", spec.to_dict()))
    return out


def test_info_and_analyze_on_a_run_still_training_say_so(tmp_path, capsys):
    from randstruct import store

    out = _started_run(tmp_path)
    with store.run_lock(out, "train"):
        for verb in (["info", str(out)], ["analyze", str(out), "--no-progress"]):
            assert main(verb) == 2
            (err,) = capsys.readouterr().err.strip().splitlines()
            assert err.startswith(f"randstruct: error: {out} has no results yet: it is being written by train (pid "
                                  f"{os.getpid()} on ")
            assert err.endswith("; wait for it to finish") and "--resume" not in err
    torch.save({}, out / store.CHECKPOINT)  # the training was killed after a checkpoint
    assert main(["info", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"randstruct: error: {out} has no results yet: its training was "
                                               "interrupted; continue it with the same command plus --resume")


def test_the_progress_rate_is_a_running_average_not_one_epoch(monkeypatch):
    import time
    from types import SimpleNamespace

    import numpy as np

    from randstruct.engine.progress import TrainingBar

    clock = iter([100.0, 101.0, 102.0, 102.01])  # start, then epochs taking 1 s, 1 s and 0.01 s
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    trainer = SimpleNamespace(epoch=0, ensemble=SimpleNamespace(size=10, g=np.zeros(10)),
                              task=SimpleNamespace(name="t"))
    bar = TrainingBar(trainer, until=3)
    rates = []
    for epoch in (1, 2, 3):
        trainer.epoch = epoch
        rates.append(bar.rate())
    bar.close()
    np.testing.assert_allclose(rates, [10.0, 10.0, 30 / 2.01])  # not 1000 for the fast epoch


def test_the_trained_line_of_a_sharded_run_counts_only_what_this_command_trained():
    from randstruct.cli.train import trained_line

    assert trained_line({"train_wall_time_s": 4.0}, 8, 100) == \
        "trained 8 networks x 100 epochs in 4.0 s (200.0 network-epochs/s)"
    sharded = {"train_wall_time_s": 9.0, "cluster_wall_time_s": 2.0, "cluster_network_epochs": 400}
    assert trained_line(sharded, 8, 100) == "trained 8 networks x 100 epochs in 2.0 s (200.0 network-epochs/s)"
    reused = {"train_wall_time_s": 9.0, "cluster_wall_time_s": 0.05, "cluster_network_epochs": 0}
    assert trained_line(reused, 8, 100) == \
        "8 networks x 100 epochs: every shard was already trained (reused), merged in 0.1 s"
