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
