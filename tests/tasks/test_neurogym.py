"""NeuroGym environments as ensemble tasks: contents against the env itself, padding and masks,
determinism under seeds, exact resume (plain and prefetched), learning, and one-line errors."""

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("neurogym", reason="the neurogym extra: pip install 'randstruct[neurogym]'")
import neurogym as ngym  # noqa: E402

from randstruct.cli import main  # noqa: E402
from randstruct.engine.model import Ensemble  # noqa: E402
from randstruct.engine.train import TrainConfig, Trainer, train  # noqa: E402
from randstruct.tasks import get_task  # noqa: E402

# K by hand from each env's default timing in ms at the adapter's default dt = 0.5 tau = 50 ms
# (ContextDecisionMaking's delay is a truncated exponential with maximum 3000 ms: trials vary in length)
ENVS = {"PerceptualDecisionMaking-v0": ((100 + 2000 + 0 + 100) // 50, 3, 3),
        "ContextDecisionMaking-v0": ((300 + 750 + 3000 + 100) // 50, 5, 3),
        "DelayComparison-v0": ((500 + 500 + 1000 + 500 + 100) // 50, 2, 3)}


@pytest.mark.parametrize("env_id", ENVS)
def test_batches_are_the_envs_trials_padded_with_mask_zero(env_id):
    k, n_in, n_out = ENVS[env_id]
    task = get_task(f"neurogym:{env_id}")
    assert (task.n_steps, task.n_in, task.n_out, task.dt, task.has_labels) == (k, n_in, n_out, 0.5, True)
    batch = task.sample(12, np.random.default_rng(5))
    assert batch.inputs.shape == (12, k, n_in) and batch.targets.shape == batch.mask.shape == (12, k, n_out)
    assert batch.decision.shape == (12, k, 1) and batch.inputs.dtype == np.float32
    # the same trials straight from a fresh env, seeded as the adapter documents
    env = ngym.make(env_id, dt=50).unwrapped
    env.seed(int(np.random.default_rng(5).integers(2**31)))
    for i in range(12):
        env.new_trial()
        n = env.ob.shape[0]
        d0, d1 = env.start_ind["decision"], env.end_ind["decision"]
        np.testing.assert_array_equal(batch.inputs[i, :n], env.ob)
        np.testing.assert_array_equal(batch.targets[i, :n], np.eye(n_out)[env.gt])
        assert not batch.inputs[i, n:].any() and not batch.targets[i, n:].any()  # padding
        scored = np.zeros(k, bool)
        scored[d0:d1] = True
        np.testing.assert_array_equal(batch.mask[i], np.repeat(scored[:, None], n_out, axis=1))
        np.testing.assert_array_equal(batch.decision[i, :, 0], scored)
        assert batch.meta["length"][i] == n and batch.meta["label"][i] == env.gt[d1 - 1]
    every = get_task(f"neurogym:{env_id}", score="all").sample(12, np.random.default_rng(5))
    np.testing.assert_array_equal(every.mask[:, :, 0], np.arange(k) < batch.meta["length"][:, None])


def test_trial_lengths_vary_and_stay_within_the_padded_length():
    task = get_task("neurogym:ContextDecisionMaking-v0")
    lengths = task.draw(400, np.random.default_rng(0))["length"]
    assert lengths.min() < lengths.max() <= task.n_steps


@pytest.mark.parametrize("env_id", ENVS)
def test_batches_are_determined_by_the_generator(env_id):
    task = get_task(f"neurogym:{env_id}")
    a, b = (task.sample(8, np.random.default_rng(3)) for _ in range(2))
    c = task.sample(8, np.random.default_rng(4))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, c.inputs)
    rng = np.random.default_rng(3)  # consecutive draws differ
    assert not np.array_equal(task.sample(8, rng).inputs, task.sample(8, rng).inputs)


@pytest.mark.parametrize("env_id, prefetch", [("PerceptualDecisionMaking-v0", False),
                                               ("ContextDecisionMaking-v0", True),
                                               ("DelayComparison-v0", False)])
def test_resume_is_exact(env_id, prefetch):
    task = get_task(f"neurogym:{env_id}")
    config = TrainConfig(epochs=6, batch_size=4, rec_step=2, loss="cross_entropy")

    def fresh():
        return Ensemble.init(10, [0.0, 1.2], [0, 1], task.n_in, task.n_out)

    whole = fresh()
    rec_whole = train(whole, task, config)
    first = Trainer(fresh(), task, config, prefetch=prefetch)
    first.run(until=3)
    state = first.state_dict()
    first.close()
    second_ens = fresh()
    second = Trainer(second_ens, task, config, prefetch=prefetch)
    second.load_state_dict(state)
    rec = second.run()
    second.close()
    np.testing.assert_array_equal(rec.loss, rec_whole.loss)
    np.testing.assert_array_equal(rec.accuracy, rec_whole.accuracy)
    torch.testing.assert_close(second_ens.wrec, whole.wrec, rtol=0, atol=0)


def test_an_ensemble_learns_perceptual_decision_making():
    """Above 80 % decisions right on fresh trials (a fifth of them have coherence 0: chance is the
    ceiling there, so ~90 % is the most an observer can reach); ~4 s here."""
    task = get_task("neurogym:PerceptualDecisionMaking-v0")
    ens = Ensemble.init(32, [0.0, 0.9], [0, 1], task.n_in, task.n_out)
    rec = train(ens, task, TrainConfig(epochs=300, batch_size=32, loss="cross_entropy", rec_step=100))
    assert np.nanmean(rec.accuracy[:, :10]) < 0.75
    test = task.sample(400, np.random.default_rng(123))
    loss, acc = ens.evaluate(test.inputs, test.targets, test.mask, task.dt, "cross_entropy", test.decision)
    assert (acc.numpy() > 0.8).all(), acc


def test_timing_params_pass_through_to_the_env():
    task = get_task("neurogym:PerceptualDecisionMaking-v0", timing={"stimulus": 500}, sigma=0.5, dt=0.2)
    assert task.dt == pytest.approx(0.2) and task.n_steps == (100 + 500 + 100) // 20
    assert task.params()["env_kwargs"] == {"timing": {"stimulus": 500}, "sigma": 0.5}
    again = get_task(task.name, **task.params())
    np.testing.assert_array_equal(again.sample(3, 1).inputs, task.sample(3, 1).inputs)


@pytest.mark.parametrize("args, message", [
    (["--task", "neurogym:NoSuchEnv-v0"], "unknown NeuroGym environment 'NoSuchEnv-v0'; allowed: AnnubesEnv-v0, "),
    (["--task", "neurogym:PerceptualDecisionMaking-v0", "--task-param", "tau_ms=50", "--task-param", "dt=null"],
     "dt = env dt 100 ms / tau_ms 50 = 2 is not in (0, 1]; raise tau_ms or pass a smaller dt"),
    (["--task", "neurogym:PerceptualDecisionMaking-v0", "--task-param", "score=last"],
     "score must be one of decision, all, got 'last'"),
    (["--task", "neurogym:PerceptualDecisionMaking-v0", "--task-param", "colour=1"],
     "NeuroGym environment 'PerceptualDecisionMaking-v0' refused its parameters"),
])
def test_bad_neurogym_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code = main(["train", *args, "--N", "8", "--g", "0", "--epochs", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("randstruct: error: " + message), err
    assert not out.exists()


def test_neurogym_not_installed_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "neurogym", None)  # import neurogym now raises ImportError
    out = tmp_path / "run"
    code = main(["train", "--task", "neurogym:PerceptualDecisionMaking-v0", "--N", "8", "--g", "0",
                 "--epochs", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["randstruct: error: NeuroGym tasks need the optional package neurogym, which is "
                                 "not installed: pip install 'randstruct[neurogym]'"]
    assert not out.exists()


def test_train_analyze_info_plot_on_a_neurogym_task(tmp_path, capsys):
    out = tmp_path / "pdm"
    assert main(["train", "--task", "neurogym:DelayComparison-v0", "--N", "16", "--g", "0,1.5", "--seeds", "2",
                 "--epochs", "30", "--batch", "8", "--out", str(out), "--no-progress"]) == 0
    assert main(["analyze", str(out), "--ranks", "3", "--shuffles", "2", "--eval-trials", "16",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    table = capsys.readouterr().out
    assert "task neurogym:DelayComparison-v0" in table and "eval acc." in table and "accuracy (last 10)" in table
    from randstruct.runs import load

    run = load(out)
    assert run.data.accuracy.shape == (4, 30) and run.data.trunc_accuracy_dw.shape == (4, 4)
    assert run.task().params() == get_task("neurogym:DelayComparison-v0").params()
    assert main(["plot", str(out), "--out", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 10_000
