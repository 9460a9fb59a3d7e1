"""One writer per run directory: racing writers, stale locks, locks of other hosts."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from randstruct import store
from randstruct.cli import main
from randstruct.runs import load

BASE = ["train", "--task", "flipflop", "--N", "16", "--g", "0,1.5", "--seeds", "2", "--no-progress"]
TRAIN = BASE + ["--epochs", "150", "--batch", "8"]


# a racer: a fresh interpreter (forking a process whose zarr event loop runs would hang the child)
# that waits for the start signal, then trains
RACER = """
import sys, time
from pathlib import Path
from randstruct.cli import main
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
sys.exit(main(sys.argv[2:]))
"""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(run_dir, **owner):
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": os.getpid(), "purpose": "train",
              "started": "2026-01-01T00:00:00+00:00"} | owner
    (run_dir / store.LOCK).write_text(json.dumps(record))


def test_two_trainers_started_together_one_refused(tmp_path):
    out, go = tmp_path / "run", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(go), *TRAIN, "--out", str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(4)  # both interpreters import randstruct and wait
    go.touch()
    results = sorted((p.wait(timeout=300), p.communicate()[1]) for p in procs)
    (ok, _), (refused, err) = results
    assert (ok, refused) == (0, 2)
    assert err.count("\n") == 1 and err.startswith("randstruct: error: ")
    assert "is in use by train (pid" in err and socket.gethostname() in err
    run = load(out)  # the winner's run is whole
    assert np.isfinite(run.data.loss.values).all() and run.data.sizes["epoch"] == 150
    assert not (out / store.LOCK).exists() and store.lock_owner(out) is None


def test_lock_is_held_and_released(tmp_path):
    out = tmp_path / "a" / "b"
    with store.run_lock(out, "analyze"):
        owner = store.lock_owner(out)
        assert owner["pid"] == os.getpid() and owner["purpose"] == "analyze"
        assert owner["host"] == socket.gethostname() and "started" in owner
        with store.run_lock(out, "analyze"):  # the owner may enter again
            pass
        assert store.lock_owner(out) is not None
    # the folders it created were empty: nothing is left behind
    assert not (tmp_path / "a").exists()


def test_live_lock_refuses_with_owner(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(out, pid=holder.pid, purpose="analyze")
        with pytest.raises(store.RunLocked, match=rf"in use by analyze \(pid {holder.pid} on "
                                                  rf"{socket.gethostname()}, since 2026-01-01"):
            with store.run_lock(out, "train"):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(store.RunLocked("x"), store.RunError)


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    pid = _dead_pid()
    _write_lock(out, pid=pid)
    assert main(BASE + ["--epochs", "2", "--batch", "4", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"taking over the stale lock of train (pid {pid}" in err
    assert load(out).data.sizes["epoch"] == 2 and store.lock_owner(out) is None


def test_lock_of_another_host_is_never_broken(tmp_path, capsys):
    out = tmp_path / "run"
    _write_lock(out, host="elsewhere.example.org", pid=_dead_pid())
    before = (out / store.LOCK).read_text()
    assert main(TRAIN + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "elsewhere.example.org" in err
    assert f"if you know the process is dead, remove {out / store.LOCK}" in err
    assert sorted(p.name for p in out.iterdir()) == [store.LOCK] and (out / store.LOCK).read_text() == before
