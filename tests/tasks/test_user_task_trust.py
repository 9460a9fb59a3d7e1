"""User tasks and refused runs (issue 28): a task's wrong channels or step count are refused before
training, a refused command leaves nothing on disk, and a run can be read without its task's code."""

import sys

import pytest

from randstruct.cli import main
from randstruct.runs import load
from randstruct.tasks import TASKS

MODULE = '''
from dataclasses import dataclass
from typing import ClassVar
import numpy as np
from randstruct.tasks import Task
from randstruct.tasks.base import check_batch_size, unpack_variates


@dataclass(frozen=True)
class Pulse(Task):
    """Report a pulse's sign on its two input channels; ``channels``/``extra`` break the contract."""
    name: ClassVar[str] = "pulse"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 1
    stochastic: ClassVar[bool] = True
    dt: float = 0.5
    channels: int = 2
    extra: int = 0
    fail: bool = False

    def __post_init__(self):
        self._dt()
        self._set(_n_steps=10)

    def draw(self, batch, rng):
        if self.fail:
            raise RuntimeError("no trials today")
        return {"sign": rng.choice([-1.0, 1.0], check_batch_size(batch))}

    def build(self, variates):
        (sign,) = unpack_variates(variates, {"sign": ()})
        k = self._n_steps + self.extra
        inputs = np.zeros((len(sign), k, self.channels))
        inputs[:, 0, 0] = sign
        targets = np.broadcast_to(sign[:, None, None], (len(sign), k, 1))
        return self._batch(inputs, targets, np.ones_like(targets), {"sign": sign})
'''


@pytest.fixture
def pulse_module(tmp_path, monkeypatch):
    before = dict(TASKS)
    (tmp_path / "lab" ).mkdir()
    (tmp_path / "lab" / "pulse_tasks.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "lab"))
    yield tmp_path / "lab"
    sys.modules.pop("pulse_tasks", None)
    TASKS.clear()
    TASKS.update(before)


def _train(out, *extra):
    return main(["train", "--N", "8", "--g", "0,0.5", "--epochs", "2", "--batch", "4", "--out", str(out),
                 "--no-progress", *extra])


@pytest.mark.parametrize("param, message", [
    ("channels=1", "task 'pulse': build() returned inputs of shape (16, 10, 1), expected (batch, n_steps, channels) = "
                   "(16, 10, 2) (n_steps = 10, n_in = 2, n_out = 1)"),
    ("extra=2", "task 'pulse': build() returned inputs of shape (16, 12, 2), expected (batch, n_steps, channels) = "
                "(16, 10, 2) (n_steps = 10, n_in = 2, n_out = 1)"),
    ("fail=true", "your code failed: task 'pulse' (pulse_tasks:Pulse) raised RuntimeError: no trials today "
                  "(LAB/pulse_tasks.py:LINE)"),
])
def test_a_user_task_that_breaks_its_contract_is_refused_before_training(tmp_path, capsys, pulse_module, param,
                                                                         message):
    out = tmp_path / "run"
    assert _train(out, "--task", "pulse_tasks:Pulse", "--task-param", param) == 2
    line = next(i for i, text in enumerate(MODULE.splitlines(), 1) if "no trials today" in text)
    message = message.replace("LAB", str(pulse_module)).replace("LINE", str(line))
    assert capsys.readouterr().err.strip().splitlines() == [f"randstruct: error: {message}"]
    assert not out.exists()  # nothing written: the corrected command is not told "already exists"
    assert _train(out, "--task", "pulse_tasks:Pulse") == 0


@pytest.mark.parametrize("args, message", [
    (["--task", "flipflop", "--loss", "cross_entropy"], "loss 'cross_entropy' needs a task with labels"),
    (["--task", "mante", "--x0-from-input"], "x0_from_input needs a single input vector, got n_in = 4"),
])
def test_a_refused_run_leaves_no_stub_folder(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert _train(out, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_a_run_on_a_user_task_opens_without_the_tasks_module(tmp_path, capsys, pulse_module):
    out = tmp_path / "run"
    assert _train(out, "--task", "pulse_tasks:Pulse") == 0
    sys.modules.pop("pulse_tasks")
    (pulse_module / "pulse_tasks.py").unlink()  # a colleague without the lab's code
    run = load(out)
    assert run.spec.task == "pulse_tasks:Pulse" and run.data.sizes["net"] == 2
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "task pulse_tasks:Pulse" in capsys.readouterr().out
    assert main(["plot", str(out), "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 0
    # what needs the task says so, in one line
    capsys.readouterr()
    assert main(["analyze", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "can be read without its task's code, but this needs it" in err[0]
    assert "cannot import module 'pulse_tasks'" in err[0]
