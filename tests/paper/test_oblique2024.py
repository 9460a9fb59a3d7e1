"""The 2024 paper's reproduction: presets, the table the figures and claims read, the CLI's
one-line errors, and the whole pipeline on a tiny sweep (the smoke scale itself is
test_oblique2024_smoke.py)."""

import dataclasses
import json

import numpy as np
import pytest

from randstruct.cli import main
from randstruct.paper.oblique2024 import experiments, reproduce
from randstruct.paper.oblique2024.results import table


def test_the_neuro_sweep_is_the_papers():
    runs = experiments.neuro("paper")
    assert len(runs) == 13  # 20 scenarios; those of a task and readout with one learning rate share a run
    assert sorted((s.task, g, s.readout) for s in runs.values() for g in s.g) == sorted(
        (p.task, g, r) for p in experiments.TASKS.values() for g, r in experiments.SCENARIOS)
    cyc = runs["cycling_small"]
    assert (cyc.n, len(cyc.seeds), cyc.g, cyc.readout, cyc.readout_from) == (512, 5, (0.7, 1.5), "small", "state")
    assert (cyc.noise_rec, cyc.noise_x0, cyc.noise_in) == (0.2, 1.0, 0.0)
    assert (cyc.train.epochs, cyc.train.lr0, cyc.train.lr_rule, cyc.train.optimizer) == (1000, 0.02, "over_n", "adam")
    assert cyc.train.trainable == ("wi", "wrec", "wo") and cyc.train.batch_size == 32
    assert runs["mante_g0.7_large"].noise_rec == 0.05 and runs["mante_g1.5_large"].train.lr0 == 0.02
    def lr0(name, g, readout):  # the learning rate of the run that trains this scenario
        task = experiments.TASKS[name].task
        return next(s.train.lr0 for s in runs.values() if s.task == task and s.readout == readout and g in s.g)

    lr = {name: [lr0(name, g, r) for g, r in experiments.SCENARIOS] for name in experiments.TASKS}
    assert lr == {"cycling": [0.02] * 4, "flipflop": [0.01, 0.01, 0.005, 0.005], "mante": [0.002, 0.02, 0.002, 0.002],
                  "romo": [0.01, 0.01, 0.01, 0.005], "complex_sine": [0.01, 0.005, 0.005, 0.005]}
    assert runs["complex_sine_g0.7_large"].task == "complex_sine"
    smoke = experiments.neuro("smoke")
    assert smoke.keys() == runs.keys()
    for label, spec in smoke.items():  # every ingredient but N, seeds and steps
        big = runs[label]
        assert dataclasses.replace(spec, n=big.n, seeds=big.seeds, train=big.train) == big
        assert dataclasses.replace(spec.train, epochs=big.train.epochs, lr0=big.train.lr0, batch_size=32,
                                   rec_step=big.train.rec_step) == big.train
        protocol = next(p for p in experiments.TASKS.values() if p.task == spec.task)
        assert spec.train.lr0 == pytest.approx(protocol.smoke_lr * big.train.lr0)
        assert spec.train.epochs == protocol.smoke_steps and big.train.epochs == protocol.steps


def tiny(scale, device="cpu"):
    """The sweep at N = 12, 2 seeds and 3 steps: every code path in seconds."""
    runs = {}
    for label, spec in experiments.neuro("smoke", device).items():
        runs[label] = dataclasses.replace(spec, n=12, seeds=(0, 1), train=dataclasses.replace(spec.train, epochs=3,
                                                                                              rec_step=1))
    return runs


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("o24")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reproduce, "neuro", tiny)
        result = reproduce.reproduce(["all"], "smoke", out, progress=False, log=lambda s: None)
    return out, result


def test_the_tiny_pipeline_draws_every_figure_and_checks_every_claim(tiny_out):
    out, result = tiny_out
    for name in reproduce.FIGURES:
        for ext in ("png", "pdf", "txt"):
            assert (out / "figures" / f"oblique2024-{name}.{ext}").stat().st_size > 0
    rows = json.loads((out / "claims.json").read_text())
    ids = [r["id"] for r in rows]
    assert ids == [c.id for c in result["claims"]] and all(i.startswith("O24.") for i in ids)
    assert len(ids) == 9 and all(r["verdict"] in ("PASS", "FAIL") for r in rows)  # all evidence present


def test_the_table_holds_the_stored_values(tiny_out):
    from randstruct.runs import load

    out, _ = tiny_out
    root = out / "runs" / "oblique2024"
    runs = {p.name: load(p) for p in root.iterdir()}
    t = table(runs)
    assert dict(t.sizes) == {"task": 5, "g": 2, "readout": 2, "seed": 2, "pair": 1, "pc": 30}
    ds = runs["mante_g1.5_large"].data
    cell = t.sel(task="mante", g=1.5, readout="large")
    np.testing.assert_array_equal(cell.rho.values, ds.align_rho.values)
    np.testing.assert_array_equal(cell.norm_wo.values, ds.align_norm_wo.values / np.sqrt(ds.sizes["channel_out"]))
    np.testing.assert_array_equal(cell.norm_x.values, ds.align_norm_activity.values)
    np.testing.assert_array_equal(cell.fit_r2.values[:, :12], ds.align_fit_r2.values)
    assert cell.dissimilarity.item() == ds.sim_procrustes.values[0, 1]
    # a run over both g: members placed by (g, seed), pairs only within one g
    both = runs["cycling_small"].data  # members (g, seed): (0.7, 0), (0.7, 1), (1.5, 0), (1.5, 1)
    assert list(zip(both.g.values, both.seed.values)) == [(0.7, 0), (0.7, 1), (1.5, 0), (1.5, 1)]
    np.testing.assert_array_equal(t.sel(task="cycling", readout="small").rho.values, both.align_rho.values.reshape(2, 2))
    assert t.sel(task="cycling", g=1.5, readout="small").dissimilarity.item() == both.sim_procrustes.values[2, 3]
    assert np.isfinite(t.noise_compression.values).all() and np.isfinite(t.loss.values).all()


def test_reproduce_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    target = tmp_path / "r"
    assert main(["reproduce", "--paper", "oblique2025", "--out", str(target)]) == 2
    assert main(["reproduce", "fig1", "--paper", "oblique2024", "--out", str(target)]) == 2
    assert main(["reproduce", "--paper", "oblique2024", "--scale", "huge", "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["randstruct: error: unknown paper 'oblique2025'; allowed: interplay2020, oblique2024",
                   "randstruct: error: unknown figure 'fig1' of oblique2024; allowed: fig3, fig4, fig5, fig6, all",
                   "randstruct: error: unknown scale 'huge'; allowed: smoke, paper"]
    assert not target.exists()
