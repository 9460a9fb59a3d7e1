"""The ``randstruct dynamics`` verb: bad input is one line, exit 2, nothing written; idempotent."""

from __future__ import annotations

import os

import numpy as np
import pytest

from randstruct.cli.main import main


def snapshot(path):
    return {str(p): p.stat().st_mtime_ns for p in sorted(path.rglob("*"))}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dyn") / "run"
    assert main(["train", "--task", "flipflop", "--N", "8", "--g", "0,0.9", "--epochs", "4", "--rec-step", "2",
                 "--record-weights", "--no-progress", "--out", str(out)]) == 0
    return out


def test_bad_input_is_one_line_and_touches_nothing(tiny_run, tmp_path, capsys):
    before = snapshot(tiny_run)
    cases = [[str(tmp_path)], [str(tiny_run), "--inits", "0"],
             [str(tiny_run), "--inputs", "1,2,3"]]
    for args in cases:
        assert main(["dynamics", *args, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("randstruct: error:") and "\n" not in err
    assert snapshot(tiny_run) == before
    assert not any(p.name.startswith(".randstruct.lock") for p in tiny_run.iterdir())


def test_dynamics_is_stored_once(tiny_run, capsys):
    from randstruct.runs import load

    assert main(["analyze", str(tiny_run), "--ranks", "3", "--shuffles", "1", "--eval-trials", "4",
                 "--no-progress"]) == 0
    assert main(["dynamics", str(tiny_run), "--inits", "4", "--inputs", "0,0;1,0", "--no-progress"]) == 0
    ds = load(tiny_run).data
    assert ds.fp_count.dims == ("net", "variant") and ds.sizes["cond"] == 2
    assert (ds.fp_count.sel(variant="w").values >= 1).all()  # zero input, b = 0: the origin is a fixed point
    assert list(ds.dyn_epoch.values) == [0, 2, 4]  # the recorded epochs, then the final weights
    before = snapshot(tiny_run)  # results.zarr and additions.zarr, where dynamics writes
    assert main(["dynamics", str(tiny_run), "--inits", "4", "--inputs", "0,0;1,0", "--no-progress"]) == 0
    assert {k: v for k, v in snapshot(tiny_run).items() if not k.endswith("dynamics.png")} == \
           {k: v for k, v in before.items() if not k.endswith("dynamics.png")}
    assert "dynamics (randstruct dynamics)" in (capsys.readouterr(), main(["info", str(tiny_run)]),
                                                 capsys.readouterr().out)[2]
    assert (tiny_run / "dynamics.png").is_file() and os.path.getsize(tiny_run / "dynamics.png") > 0


def test_dynamics_without_analysis_searches_what_it_can(tiny_run, tmp_path, capsys):
    """No functional rank yet: W and the shuffled variant are searched, the truncated one is not,
    and one line says why (issue 22 item 9)."""
    import shutil

    from randstruct.runs import load

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "additions.zarr").exists() and shutil.rmtree(run / "additions.zarr")
    assert main(["dynamics", str(run), "--inits", "4", "--no-progress"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:") and "rank" in line]
    assert len(notes) == 1 and "randstruct analyze" in notes[0]
    ds = load(run).data
    assert (ds.fp_count.sel(variant="w").values >= 1).all() and (ds.fp_count.sel(variant="shuffle").values >= 1).all()
    assert (ds.fp_count.sel(variant="trunc").values == 0).all() and (ds.fp_trunc_rank.values == -1).all()


def test_an_unsearched_truncated_variant_is_na_and_trunc_rank_picks_r(tiny_run, tmp_path, capsys):
    """Issue 28: without a functional rank the truncated variant shows n/a, not 0.00 counts;
    --trunc-rank R searches W0 + dW_R for every network."""
    import shutil

    from randstruct.dynamics.summary import dynamics_table
    from randstruct.runs import load

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "additions.zarr").exists() and shutil.rmtree(run / "additions.zarr")
    assert main(["dynamics", str(run), "--inits", "4", "--no-progress"]) == 0
    table = capsys.readouterr().out.splitlines()
    trunc = [line.split() for line in table if len(line.split()) > 2 and line.split()[1] == "trunc"]
    assert len(trunc) == 2 and all(row[2:4] == ["n/a", "n/a"] for row in trunc)
    rows = [r for r in dynamics_table(load(run).data) if r["variant"] == "trunc"]
    assert all(r["nets"] == 0 and np.isnan(r["stable"]) for r in rows)
    assert main(["dynamics", str(run), "--inits", "4", "--trunc-rank", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out and "(r = 2)" in out
    ds = load(run).data
    assert (ds.fp_trunc_rank.values == 2).all() and (ds.fp_count.sel(variant="trunc").values >= 1).all()
    assert main(["dynamics", str(run), "--trunc-rank", "9", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == "randstruct: error: --trunc-rank must be <= N = 8, got 9"
