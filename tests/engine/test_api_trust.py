"""The Python API refuses what the CLI refuses and keeps handles current (issue 28)."""

import warnings

import numpy as np
import pytest
import torch

from randstruct.analysis import analyze_run
from randstruct.dynamics import find_fixed_points
from randstruct.engine.config import TrainConfig
from randstruct.engine.model import Ensemble
from randstruct.runs import RunSpec, execute


def test_run_data_shows_the_analysis_after_analyze_run(tmp_path):
    spec = RunSpec(task="flipflop", n=12, g=(0.0, 0.9), seeds=(0,), train=TrainConfig(epochs=4, batch_size=4))
    run = execute(spec, tmp_path / "r", progress=False)
    assert "functional_rank" not in run.data
    analyze_run(run, ranks=2, shuffles=1, eval_trials=4, progress=False)
    assert "functional_rank" in run.data and run.data.functional_rank.shape == (2,)


@pytest.mark.parametrize("dt", [0, 5, float("nan"), -0.1, True])
def test_simulate_and_loss_refuse_dt_outside_0_1(dt):
    ens = Ensemble.init(6, [0.5], [0], 1, 1)
    u = np.zeros((2, 3, 1))
    with pytest.raises(ValueError, match=r"^dt must be a number in \(0, 1\] \(units of tau\), got "):
        ens.simulate(u, dt)
    with pytest.raises(ValueError, match=r"^dt must be a number in \(0, 1\]"):
        ens.loss(u, np.zeros((2, 3, 1)), np.ones((2, 3, 1)), dt)
    ens.simulate(u, 1.0)  # the edge is allowed


def test_duplicate_gains_or_seeds_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^g lists 0.9 twice; each gain once, please \(got \[0.0, 0.9, 0.9\]\)$"):
        Ensemble.init(6, [0.0, 0.9, 0.9], [0], 1, 1)
    with pytest.raises(ValueError, match=r"^g lists 0.9 twice"):
        Ensemble.init(6, [0.3 * 3, 0.9], [0], 1, 1)
    with pytest.raises(ValueError, match=r"^seeds list 3 twice; each seed once, please \(got \[3, 1, 3\]\)$"):
        RunSpec(task="flipflop", n=8, g=(0.5,), seeds=(3, 1, 3), train=TrainConfig(epochs=1))


def test_runspec_takes_train_as_a_dict_or_says_what_is_wrong():
    spec = RunSpec(task="flipflop", n=8, g=(0.5,), seeds=(0,), train={"epochs": 3, "batch_size": 4,
                                                                      "trainable": ["wrec"]})
    assert spec.train == TrainConfig(epochs=3, batch_size=4, trainable=("wrec",))
    assert RunSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match=r"^unknown train field 'epoch'; allowed: epochs, batch_size"):
        RunSpec(task="flipflop", n=8, g=(0.5,), seeds=(0,), train={"epoch": 3})
    with pytest.raises(ValueError, match=r"^train must be a TrainConfig or a dict of its fields, got int$"):
        RunSpec(task="flipflop", n=8, g=(0.5,), seeds=(0,), train=3)


def _linear_members(e=3, n=10, k=5, seed=0):
    rng = np.random.default_rng(seed)
    w = torch.as_tensor(0.5 * rng.standard_normal((e, n, n)) / np.sqrt(n))
    const = torch.as_tensor(rng.standard_normal((e, 1, n))).expand(e, k, n).contiguous()
    x0 = torch.as_tensor(rng.standard_normal((e, k, n)))
    return w, const, x0


def test_a_bad_member_or_state_does_not_wipe_out_the_valid_fixed_points():
    w, const, x0 = _linear_members()
    clean = find_fixed_points(w, const, x0, nonlinearity="linear")
    assert (clean.count == 1).all()
    w_bad, x_bad = w.clone(), x0.clone()
    w_bad[1, 2, 3] = float("nan")
    x_bad[2, 0, 4] = float("inf")  # one of member 2's five initial states
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fp = find_fixed_points(w_bad, const, x_bad, nonlinearity="linear")
    assert fp.count.tolist() == [1, 0, 1]
    np.testing.assert_allclose(fp.xstar[[0, 2], 0], clean.xstar[[0, 2], 0], rtol=1e-8, atol=1e-10)
    assert fp.info["skipped_members"] == [1] and fp.info["skipped_initial_states"] == 1
    assert any("skipped 1 member(s) with non-finite weights [1] and 1 initial state" in str(c.message)
               for c in caught)
