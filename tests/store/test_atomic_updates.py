"""A store update killed at any moment leaves the old version or the new one, whole."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from randstruct import store
from randstruct.analysis import analyze_run
from randstruct.cli import main
from randstruct.engine.train import TrainConfig
from randstruct.runs import RunSpec, execute, load

# analyze --force in a child whose zarr writes are slowed down, so that a signal lands mid-write
CHILD = textwrap.dedent("""
    import asyncio, sys
    import zarr.storage
    from randstruct.cli import main

    real_set = zarr.storage.LocalStore.set
    started = []

    async def slow_set(self, key, value):
        if not started:
            started.append(1)
            print("WRITING", flush=True)
        await asyncio.sleep(0.02)
        return await real_set(self, key, value)

    zarr.storage.LocalStore.set = slow_set
    sys.exit(main(["analyze", sys.argv[1], "--ranks", "3", "--shuffles", "2", "--eval-trials", "4",
                   "--force", "--no-progress"]))
""")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    path = tmp_path_factory.mktemp("atomic") / "run"
    spec = RunSpec(task="romo", n=8, g=(0.5,), seeds=2, train=TrainConfig(epochs=4, batch_size=4, lr0=0.5))
    execute(spec, path, progress=False)
    analyze_run(path, ranks=2, shuffles=1, eval_trials=4, progress=False)
    return path


def _tree(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("sig, delay", [(signal.SIGKILL, 0.0), (signal.SIGKILL, 0.4), (signal.SIGTERM, 0.2),
                                        (signal.SIGINT, 0.3)])
def test_analyze_killed_while_writing(analysed, sig, delay, capsys):
    training = _tree(analysed / store.RESULTS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(analysed)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "WRITING"
    time.sleep(delay)
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0  # it was cut short
    assert "Traceback" not in err
    if sig == signal.SIGINT:
        assert "analyze" in err and "--resume" not in err  # the advice is one analyze accepts
    run = load(analysed)  # readable: the old analysis (ranks 0..2) or the new one (0..3), whole
    assert run.data.sizes["rank"] in (3, 4)
    assert np.isfinite(run.data.trunc_loss_dw.values).all()
    assert _tree(analysed / store.RESULTS) == training  # the training arrays were never touched
    assert main(["info", str(analysed)]) == 0
    assert main(["analyze", str(analysed), "--ranks", "3", "--shuffles", "2", "--eval-trials", "4",
                 "--force", "--no-progress"]) == 0  # a killed writer's lock does not block the next
    assert load(analysed).data.sizes["rank"] == 4 and store.lock_owner(analysed) is None
    capsys.readouterr()


def test_swap_cut_between_its_renames_reads_the_old_version(analysed):
    final = analysed / store.ADDITIONS
    before = load(analysed).data
    old = final.with_name(final.name + ".old")
    os.replace(final, old)  # the state a crash between the two renames leaves
    assert load(analysed).data.identical(before)
    analyze_run(analysed, ranks=1, shuffles=1, eval_trials=4, progress=False)  # the writer repairs first
    assert not old.exists() and load(analysed).data.sizes["rank"] == 2
