"""A finished run extended to more epochs (issue 28): history and records grow on the same grid, and
the result is bitwise the run trained for the larger number of epochs at once."""

import numpy as np
import pytest

from randstruct import store
from randstruct.cli import main
from randstruct.runs import load

OWN = ("train_wall_time_s",)  # wall times differ


def _train(out, epochs, *extra):
    return main(["train", "--task", "flipflop", "--N", "10", "--g", "0,0.9", "--seeds", "2", "--epochs", str(epochs),
                 "--batch", "4", "--rec-step", "2", "--out", str(out), "--no-progress", *extra])


def test_resume_with_more_epochs_extends_a_finished_run_bitwise(tmp_path, capsys):
    assert _train(tmp_path / "once", 10) == 0
    assert _train(tmp_path / "ext", 6) == 0
    assert main(["analyze", str(tmp_path / "ext"), "--no-progress", "--ranks", "2", "--shuffles", "1",
                 "--eval-trials", "4"]) == 0
    assert "functional_rank" in load(tmp_path / "ext").data
    # --rec-step is taken from the run (its default would follow --epochs)
    assert main(["train", "--task", "flipflop", "--N", "10", "--g", "0,0.9", "--seeds", "2", "--epochs", "10",
                 "--batch", "4", "--out", str(tmp_path / "ext"), "--no-progress", "--resume"]) == 0
    a, b = load(tmp_path / "once"), load(tmp_path / "ext")
    assert b.spec.train.epochs == 10 and list(b.data.rec.values) == [0, 2, 4, 6, 8]
    assert "functional_rank" not in b.data  # the shorter run's analysis is stale
    assert sorted(a.data.variables) == sorted(b.data.variables)
    for name in a.data.variables:
        assert np.array_equal(a.data[name].values, b.data[name].values, equal_nan=True), name
    assert {k: v for k, v in a.data.attrs.items() if k not in OWN} == \
           {k: v for k, v in b.data.attrs.items() if k not in OWN}
    assert a.spec == b.spec


def test_a_finished_run_refuses_what_cannot_extend_it(tmp_path, capsys):
    out = tmp_path / "r"
    assert _train(out, 4) == 0
    capsys.readouterr()
    assert _train(out, 4, "--resume") == 2
    assert capsys.readouterr().err.strip() == (f"randstruct: error: {out} is already complete; pass a larger --epochs "
                                               "with --resume to train it further, or --overwrite to train it again")
    assert _train(out, 3, "--resume") == 2  # fewer epochs: another run
    assert "its config.json differs" in capsys.readouterr().err
    (out / store.CHECKPOINT).unlink()  # a run without its final state (an older randstruct, shards)
    assert _train(out, 8, "--resume") == 2
    assert "cannot be extended: it keeps no final trainer state" in capsys.readouterr().err
    assert load(out).data.sizes["epoch"] == 4
