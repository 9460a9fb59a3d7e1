"""User tasks: the example of docs/tasks.md runs, registration, module:Class import, reload of a
run from its recorded reference, and the contract checked with one-line errors."""

import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from randstruct.cli import main
from randstruct.engine.train import TrainConfig
from randstruct.runs import RunSpec, execute, load
from randstruct.tasks import TASKS, Task, get_task, register_task
from randstruct.tasks.base import check_batch_size, unpack_variates

DOC = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"


def _doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture
def registry():
    """Names registered by a test are removed afterwards (TASKS is process-wide)."""
    before = dict(TASKS)
    yield TASKS
    TASKS.clear()
    TASKS.update(before)


@dataclass(frozen=True)
class Ramp(Task):
    """Output the time since a pulse: a minimal MSE task defined here (no labels)."""

    name: ClassVar[str] = "ramp"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    stochastic: ClassVar[bool] = True

    dt: float = 0.5
    T: float = 6.0

    def __post_init__(self):
        self._dt()
        self._set(_n_steps=int(self.T / self.dt))

    def draw(self, batch, rng):
        return {"onset": rng.integers(0, self._n_steps // 2, check_batch_size(batch))}

    def build(self, variates):
        (onset,) = unpack_variates(variates, {"onset": ()})
        k = np.arange(self._n_steps)
        inputs = (k == onset[:, None])[..., None] * 1.0
        since = np.clip(k - onset[:, None], 0, None) * self.dt / self.T
        return self._batch(inputs, since[..., None], (k >= onset[:, None])[..., None], {"onset": onset})


def test_the_documented_example_trains_with_both_losses(registry):
    namespace = {"__name__": "docs_tasks_example"}
    exec(compile(_doc_example(), str(DOC), "exec"), namespace)
    sign = get_task("sign", dt=0.5)
    assert type(sign) is namespace["Sign"] and registry["sign"] is namespace["Sign"]
    batch = sign.sample(64, np.random.default_rng(0))
    assert batch.inputs.shape == (64, sign.n_steps, 1) and batch.decision.shape == (64, sign.n_steps, 1)
    label = batch.targets[:, -1].argmax(-1)
    np.testing.assert_array_equal(label, batch.meta["sign"] > 0)
    from randstruct.engine.model import Ensemble
    from randstruct.engine.train import train

    for loss in ("mse", "cross_entropy"):
        ens = Ensemble.init(16, [0.5], [0, 1], 1, 2)
        rec = train(ens, sign, TrainConfig(epochs=150, batch_size=32, loss=loss, lr0=0.5))
        # an ideal observer of the summed pulse is right 99.9 % of the time (0.5 / (0.5 / sqrt(10)) = 3.2 sd)
        assert np.nanmean(rec.accuracy[:, -20:]) > 0.9, (loss, rec.accuracy[:, -20:].mean())


def test_a_task_registered_here_trains_and_reloads(tmp_path, registry):
    assert register_task(Ramp) is Ramp and registry["ramp"] is Ramp
    spec = RunSpec(task="ramp", n=12, g=(0.0, 1.2), seeds=(0,), train=TrainConfig(epochs=5, batch_size=4),
                   task_params={"T": 4.0})
    assert spec.task_class == "test_user_tasks:Ramp"
    run = execute(spec, tmp_path / "r", progress=False)
    assert run.data.loss.shape == (2, 5) and "accuracy" not in run.data
    del registry["ramp"]  # a later process: the name is gone, the recorded class is imported
    again = load(tmp_path / "r").task()
    assert type(again) is Ramp and again.params() == {"dt": 0.5, "T": 4.0}


def test_a_name_that_cannot_be_rebuilt_says_what_to_import(registry):
    register_task(Ramp)
    config = TrainConfig(epochs=1, batch_size=2)
    script = RunSpec(task="ramp", n=12, g=(0.0,), seeds=(0,), train=config, task_class="__main__:Ramp")
    gone = RunSpec(task="ramp", n=12, g=(0.0,), seeds=(0,), train=config, task_class="not_a_module_xyz:Ramp")
    del registry["ramp"]
    with pytest.raises(ValueError, match=r"^task 'ramp' is not registered in this process and was defined in a "
                                         r"script \(__main__\): import or run the code that registers it first$"):
        script.make_task()
    with pytest.raises(ValueError, match=r"^task 'ramp' is not registered: task 'not_a_module_xyz:Ramp': cannot "
                                         r"import module 'not_a_module_xyz'"):
        gone.make_task()


def test_register_task_decorator_forms_and_conflicts(registry):
    @register_task(name="ramp2")
    @dataclass(frozen=True)
    class Ramp2(Ramp):
        pass

    assert registry["ramp2"] is Ramp2
    with pytest.raises(ValueError, match=r"^task name 'flipflop' is already registered to "
                                         r"randstruct.tasks.cognitive:FlipFlop$"):
        register_task(Ramp, name="flipflop")
    with pytest.raises(ValueError, match=r"^task name 'ramp2' is already registered to .*; pass replace=True"):
        register_task(Ramp, name="ramp2")
    assert register_task(Ramp, name="ramp2", replace=True) is Ramp and registry["ramp2"] is Ramp
    with pytest.raises(ValueError, match=r"^task name must be a non-empty string without ':', got 'a:b'$"):
        register_task(Ramp, name="a:b")


MODULE = '''
from dataclasses import dataclass
from typing import ClassVar
from randstruct.tasks import Task

{example}

@dataclass(frozen=True)
class NoSteps(Task):
    name: ClassVar[str] = "nosteps"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    stochastic: ClassVar[bool] = False
    dt: float = 0.5
    def draw(self, batch, rng):
        return {{}}
    def build(self, variates):
        return None

@dataclass(frozen=True)
class NoChannels(Task):
    name: ClassVar[str] = "nochannels"
    stochastic: ClassVar[bool] = False
    dt: float = 0.5
    def draw(self, batch, rng):
        return {{}}
    def build(self, variates):
        return None

class NotATask:
    pass

@dataclass(frozen=True)
class BigStep(NoSteps):
    dt: float = 2.0
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch, registry):
    example = _doc_example().replace("@register_task\n", "")
    (tmp_path / "mylab_tasks.py").write_text(MODULE.format(example=textwrap.dedent(example)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mylab_tasks"
    sys.modules.pop("mylab_tasks", None)


def test_module_class_reference_trains_and_reloads_from_the_cli(tmp_path, capsys, user_module):
    out = tmp_path / "run"
    assert main(["train", "--task", f"{user_module}:Sign", "--task-param", "noise=0.3", "--N", "10", "--g", "0,1",
                 "--epochs", "3", "--batch", "4", "--loss", "cross_entropy", "--out", str(out),
                 "--no-progress"]) == 0
    run = load(out)
    assert run.config["spec"]["task"] == "mylab_tasks:Sign" and run.spec.task_params["noise"] == 0.3
    assert run.data.attrs["loss_kind"] == "cross_entropy" and run.data.accuracy.shape == (2, 3)
    assert type(run.task()).__name__ == "Sign" and "sign" not in TASKS


@pytest.mark.parametrize("ref, message", [
    ("mylab_tasks:NoSteps", "task NoSteps does not set its step count: assign _n_steps in __post_init__ or "
                            "override the n_steps property (see docs/tasks.md)"),
    ("mylab_tasks:NoChannels", "task class NoChannels lacks the class variable(s) n_in, n_out (see docs/tasks.md)"),
    ("mylab_tasks:NotATask", "NotATask is not a randstruct.tasks.Task subclass (see docs/tasks.md)"),
    ("mylab_tasks:Missing", "task 'mylab_tasks:Missing': module 'mylab_tasks' has no 'Missing'"),
    ("nomodule_here:X", "task 'nomodule_here:X': cannot import module 'nomodule_here' (No module named "
                        "'nomodule_here'); install it or add its folder to PYTHONPATH"),
    ("mylab_tasks:BigStep", "task BigStep: dt must be in (0, 1] (units of tau), got 2.0"),
    ("mylab_tasks:", "invalid task reference 'mylab_tasks:': expected package.module:ClassName"),
])
def test_a_class_that_breaks_the_contract_is_one_line_and_exit_2(tmp_path, capsys, user_module, ref, message):
    out = tmp_path / "run"
    code = main(["train", "--task", ref, "--N", "8", "--g", "0", "--epochs", "1", "--out", str(out),
                 "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"randstruct: error: {message}"]
    assert not out.exists()
