"""Figures point at what their captions name (issue 28): panel letters, the networks Fig 1 leaves
out, axis labels of Fig S2 and a functional-rank axis that holds the ranks."""

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from randstruct.analysis import analyze_run
from randstruct.engine.config import TrainConfig
from randstruct.paper.figures import check_letters, fig1, fig2, fig3, fig4, figS2, figS3, figS5
from randstruct.paper.figures.common import caption_letters, drawn_letters, plt
from randstruct.runs import RunSpec, execute


def test_caption_letters_reads_single_lists_and_ranges():
    assert caption_letters("(a) x. (b, c) y (d-f, h); (eq. 48) (g = 0) (seed 0) (j-l)") == set("abcdefhjkl")


def test_fig2_letters_its_panels_and_its_rank_axis_holds_every_rank():
    g = np.repeat([0.0, 0.9, 1.8], 3)
    ds = xr.Dataset({"conv_epoch": ("net", np.full(9, 50)), "norm_dw_last_rec": ("net", np.ones(9)),
                     "rel_shuffle_loss": ("net", np.full(9, 0.5)), "diverged_epoch": ("net", np.full(9, -1)),
                     "functional_rank": ("net", np.array([3, 4, 5, 9, 12, 15, 18, 20, 22]))},
                    coords={"g": ("net", g), "seed": ("net", np.tile([0, 1, 2], 3))})
    fig, caption = fig2({"flipflop": SimpleNamespace(data=ds)}, min_samples=3)
    try:
        check_letters(fig, caption, "fig2")
        top = 20 + np.std([18, 20, 22])
        assert fig.axes[3].get_ylim()[1] >= top  # the paper's 0-12 would clip the flip-flop ranks
    finally:
        plt.close(fig)


@pytest.fixture(scope="module")
def linear_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("linear")
    runs = {}
    for zhat in (0.5, 2.0):
        config = TrainConfig(epochs=30, batch_size=1, optimizer="sgd", lr_rule="linear_gain", lr0=0.01,
                             trainable=("wrec",), rec_step=1, sv_top=5)
        spec = RunSpec(task="simple", n=16, g=(0.0, 0.6), seeds=2, train=config,
                       task_params={"T": 21.0, "target": zhat}, nonlinearity="linear")
        runs[f"zhat_{zhat}"] = execute(spec, tmp / f"zhat_{zhat}", progress=False)
    return runs


@pytest.mark.parametrize("draw", [fig3, fig4, figS3])
def test_linear_figures_letter_every_panel_their_captions_name(linear_runs, draw):
    fig, caption = draw(linear_runs)
    try:
        assert caption_letters(caption)
        check_letters(fig, caption, draw.__name__)
    finally:
        plt.close(fig)


def test_figS5_letters_its_panels(tmp_path):
    runs = {}
    for g in (0.0, 0.4):
        config = TrainConfig(epochs=10, batch_size=1, optimizer="sgd", lr_rule="constant", lr0=0.05,
                             trainable=("wrec",), rec_step=5, sv_top=5, eig_top=16)
        spec = RunSpec(task="cosine", n=16, g=(g,), seeds=1, train=config, nonlinearity="linear",
                       shared_vector=True, x0_from_input=True)
        runs[f"g_{g}"] = execute(spec, tmp_path / f"g_{g}", progress=False)
    fig, caption = figS5(runs)
    try:
        check_letters(fig, caption, "figS5")
    finally:
        plt.close(fig)


def test_fig1_says_which_networks_it_leaves_out_and_figS2_labels_its_eigenvalue_axes(tmp_path):
    spec = RunSpec(task="flipflop", n=40, g=(0.0, 0.9), seeds=4, train=TrainConfig(epochs=4, batch_size=4))
    run = execute(spec, tmp_path / "ff", progress=False)
    analyze_run(run, ranks=3, shuffles=1, eval_trials=8, progress=False)
    assert (run.data.functional_rank.values <= 0).all()  # the premise: 4 epochs converge nothing
    fig, caption = fig1({"flipflop": run})
    try:
        assert drawn_letters(fig) == set("adgj")  # the flip-flop column of (a-c), (d-f), (g-i), (j-l)
        assert "(g-l) show only networks that converged (a functional rank); left out there (not converged): " \
               "flip-flop at g = 0; flip-flop at g = 0.9." in " ".join(caption.split())
    finally:
        plt.close(fig)
    fig, _ = figS2({"flipflop": run})
    try:
        eig_axes = [ax for ax in fig.axes if ax.get_title().startswith(("ΔW,", "W,"))]
        assert eig_axes and all(ax.get_xlabel() == "Re λ" and ax.get_ylabel() == "Im λ" for ax in eig_axes)
    finally:
        plt.close(fig)
