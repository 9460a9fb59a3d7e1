"""Analysis plug-ins: the example of docs/analyses.md runs and is stored once, in this process and
per shard; the contract is checked with one-line errors; requirements run first."""

import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from randstruct.analysis import ANALYSES, Analysis, get_analysis, register_analysis, run_analyses
from randstruct.analysis.base import check_analysis_class
from randstruct.cli import main
from randstruct.runs import load

DOC = Path(__file__).resolve().parents[2] / "docs" / "analyses.md"


def _doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture
def registry():
    before = dict(ANALYSES)
    yield ANALYSES
    ANALYSES.clear()
    ANALYSES.update(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("plug") / "run"
    assert main(["train", "--task", "flipflop", "--N", "12", "--g", "0,0.9", "--seeds", "2", "--epochs", "6",
                 "--batch", "4", "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """The documented example as an importable module ``mylab_analyses``."""
    (tmp_path / "mylab_analyses.py").write_text(_doc_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mylab_analyses"
    sys.modules.pop("mylab_analyses", None)


def _copy(trained, tmp_path):
    import shutil

    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def snapshot(path):
    return {str(p): p.stat().st_mtime_ns for p in sorted(path.rglob("*"))}


def test_the_documented_analysis_is_stored_once_and_loaded(trained, tmp_path, registry, user_module, capsys):
    run = _copy(trained, tmp_path)
    args = ["analyze", str(run), "--analysis", f"{user_module}:MeanRate", "--param", "mean_rate.trials=8",
            "--no-progress"]
    assert main(args) == 0
    ds = load(run).data
    assert ds.rate_mean.dims == ("net",) and ds.rate_mean.attrs["description"].startswith("mean of |phi(x)|")
    assert ds.rate_mean.attrs["trials"] == 8 and '"analysis": "mean_rate"' in ds.rate_mean.attrs["analysis"]
    # an independent computation: simulate each network alone on its own trials
    from randstruct.engine.seeding import member_rng

    ens, task = load(run).ensemble(), load(run).task()
    for i in range(ens.size):
        b = task.sample(8, member_rng(int(ens.seed[i]), float(ens.g[i]), "eval", 99))
        _, r = ens.select(i).simulate(b.inputs, task.dt, return_rates=True)
        np.testing.assert_allclose(ds.rate_max.values[i], r.abs().max().item(), rtol=1e-6)
    before = snapshot(run)
    assert main(args) == 0  # same analysis, same parameters: nothing computed or written
    assert snapshot(run) == before
    assert main(args[:-2] + ["mean_rate.trials=4", "--no-progress"]) == 0  # other parameters: replaced
    assert load(run).data.rate_mean.attrs["trials"] == 4
    assert "final_eval_loss" not in load(run).data  # only what was asked for


def test_the_documented_analysis_per_shard_equals_in_process(trained, tmp_path, user_module):
    pytest.importorskip("distributed")
    one, two = _copy(trained, tmp_path / "a"), _copy(trained, tmp_path / "b")
    ref = f"{user_module}:MeanRate"
    assert main(["analyze", str(one), "--analysis", ref, "--no-progress"]) == 0
    assert main(["analyze", str(two), "--analysis", ref, "--no-progress", "--scheduler", "local:2",
                 "--threads", "1", "--shard-size", "1"]) == 0
    a, b = load(one).data, load(two).data
    for name in ("rate_mean", "rate_max"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
        assert a[name].attrs == b[name].attrs


@dataclass(frozen=True)
class NoParams:
    pass


class Doubled(Analysis):
    """Reads the standard analysis' final loss: requires it."""

    name = "doubled_loss"
    Params = NoParams
    variables = {"doubled_loss": "twice final_eval_loss"}
    requires = ("connectivity",)

    def compute(self, ensemble, task, data, params):
        return xr.Dataset({"doubled_loss": ("net", 2 * data.final_eval_loss.values)})


def test_a_required_analysis_runs_first(trained, tmp_path, registry):
    run = _copy(trained, tmp_path)
    out = run_analyses(run, [Doubled], progress=False)
    ds = load(run).data
    np.testing.assert_array_equal(out.doubled_loss.values, 2 * ds.final_eval_loss.values)
    assert '"analysis": "connectivity"' in ds.final_eval_loss.attrs["analysis"]


class WrongDims(Analysis):
    name = "wrong_dims"
    Params = NoParams
    variables = {"v": "a value"}

    def compute(self, ensemble, task, data, params):
        return xr.Dataset({"v": ("unit", np.zeros(ensemble.n))})


class Undeclared(WrongDims):
    name = "undeclared"

    def compute(self, ensemble, task, data, params):
        return xr.Dataset({"v": ("net", np.zeros(ensemble.size)), "w": ("net", np.zeros(ensemble.size))})


@pytest.mark.parametrize("cls, message", [
    (WrongDims, "variable 'v' must have the dimension net (length 4) first"),
    (Undeclared, "undeclared: w"),
])
def test_a_plugin_that_breaks_its_contract_is_refused(trained, tmp_path, cls, message):
    run = _copy(trained, tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        run_analyses(run, [cls], progress=False)
    assert not (run / "additions.zarr").exists()


def test_the_class_contract_is_checked_in_one_line(registry):
    class NoDefaults(Analysis):
        name = "x"

        @dataclass
        class Params:
            k: int

        variables = {"v": "d"}

        def compute(self, *a):
            return None

    class Unnamed(Analysis):
        Params = NoParams
        variables = {"v": "d"}

    with pytest.raises(ValueError, match="every parameter needs a default, k has none"):
        check_analysis_class(NoDefaults)
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        check_analysis_class(Unnamed)
    with pytest.raises(ValueError, match="already registered"):
        register_analysis(type("Fake", (Doubled,), {"name": "connectivity"}))
    with pytest.raises(ValueError, match="unknown analysis 'nope'"):
        get_analysis("nope")
    with pytest.raises(ValueError, match="unknown parameter 'bogus' for analysis 'connectivity'"):
        run_analyses("unused", ["connectivity"], {"connectivity": {"bogus": 1}})


def test_plot_draws_the_regimes_figure_once_they_are_stored(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    assert main(["plot", str(run), "--out", str(tmp_path / "f.png")]) == 0
    assert not (tmp_path / "f-regimes.png").exists()  # nothing to draw yet
    run_analyses(run, ["regime", "similarity"], {"similarity": {"grace": 1.0}}, progress=False)
    assert main(["plot", str(run), "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f-regimes.png").stat().st_size > 0 and "regimes figure ->" in capsys.readouterr().out
