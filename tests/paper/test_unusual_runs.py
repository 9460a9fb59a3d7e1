"""Figures and claims on runs the paper never shows: a diverged network, networks that never converge."""

import numpy as np
import pytest

from randstruct.engine.config import TrainConfig
from randstruct.paper.claims import cosine_claims
from randstruct.paper.figures import fig4, figS5
from randstruct.paper.figures.common import plt
from randstruct.paper.stats import linear_statistics, top_imaginary
from randstruct.runs import RunSpec, execute


def _cosine(tmp_path, g, lr, epochs=20):
    config = TrainConfig(epochs=epochs, batch_size=1, optimizer="sgd", lr_rule="constant", lr0=lr,
                         trainable=("wrec",), rec_step=5, sv_top=5, eig_top=16)
    spec = RunSpec(task="cosine", n=16, g=(g,), seeds=1, train=config, nonlinearity="linear",
                   shared_vector=True, x0_from_input=True)
    return execute(spec, tmp_path / f"g_{g}", progress=False)


@pytest.fixture(scope="module")
def cosine_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cosine")
    runs = {"g_0.0": _cosine(tmp, 0.0, 0.05), "g_0.8": _cosine(tmp, 0.8, 1e4)}
    assert runs["g_0.8"].data.diverged_epoch.values[0] >= 0  # the premise: one run diverged
    assert np.isnan(runs["g_0.8"].data.eig_w_rec.values[0, -1]).all()
    return runs


def test_top_imaginary_is_nan_for_a_record_without_finite_eigenvalues():
    ev = np.array([[1 + 2j, 3 - 1j, 0.5 + 0.1j], [np.nan + 0j, np.nan, np.nan], [np.nan, 2 + 0.5j, 1 + 0.7j]])
    top = top_imaginary(ev)
    assert top[0] == 1 + 2j and top[2] == 1 + 0.7j and np.isnan(top[1].real) and np.isnan(top[1].imag)


def test_figS5_draws_a_diverged_cosine_run(cosine_runs):
    fig, caption = figS5(cosine_runs)
    plt.close(fig)
    assert "Fig S5" in caption


def test_cosine_claims_fail_instead_of_crashing_on_a_diverged_run(cosine_runs):
    claims = {c.id: c for c in cosine_claims(cosine_runs)}
    assert not claims["E5.frequency"].passed and "nan" in claims["E5.frequency"].measured
    assert not claims["E5.learns"].passed


@pytest.fixture(scope="module")
def slow_linear_runs(tmp_path_factory):
    """Too few epochs for every network: at g = 0.9 none (ẑ = 0.5) or one of two (ẑ = 2) converge."""
    tmp = tmp_path_factory.mktemp("linear")
    runs = {}
    for zhat, eta0, epochs in ((0.5, 0.015, 88), (2.0, 0.003, 130)):
        config = TrainConfig(epochs=epochs, batch_size=1, optimizer="sgd", lr_rule="linear_gain", lr0=eta0,
                             trainable=("wrec",), sv_top=5)
        spec = RunSpec(task="simple", n=64, g=(0.0, 0.9), seeds=2, train=config,
                       task_params={"T": 101.0, "target": zhat}, nonlinearity="linear")
        runs[zhat] = execute(spec, tmp / f"zhat_{zhat}", progress=False)
    return runs


def test_fig4_panels_average_the_same_networks_and_say_which_were_left_out(slow_linear_runs):
    fig, caption = fig4({f"zhat_{z}": r for z, r in slow_linear_runs.items()})
    try:
        for line, (zhat, run) in enumerate(sorted(slow_linear_runs.items())):
            st = linear_statistics(run)
            ok = np.isfinite(st["tau_c"])
            assert ok[st["g"] == 0].all() and not ok[st["g"] == 0.9].all()  # the premise
            for ax, key in zip(fig.axes, ("tau_c", "norm_dw", "grad")):
                ref = st[key][(st["g"] == 0) & ok].mean()
                expected = [st[key][(st["g"] == g) & ok].mean() / ref if ((st["g"] == g) & ok).any() else np.nan
                            for g in (0.0, 0.9)]
                np.testing.assert_allclose(ax.containers[line].lines[0].get_ydata(), expected, rtol=1e-6)  # float32 records
    finally:
        plt.close(fig)
    assert "never converged and are left out of every panel" in caption
    assert "2 of 4 networks at ẑ = 0.5 (g = 0.9)" in caption and "1 of 4 networks at ẑ = 2 (g = 0.9)" in caption
