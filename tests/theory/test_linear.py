"""Linear networks on the simple task against the first-order theory (SPEC 5, 6, T)."""

import numpy as np
import pytest
import torch

from randstruct.engine import kernels
from randstruct import theory
from randstruct.engine.model import Ensemble, to_kernel_layout
from randstruct.tasks import get_task
from randstruct.engine.train import TrainConfig, train

ETA0 = 0.015  # SPEC 5.1, zhat = 0.5


def _conv_epoch(loss, l0, threshold=0.05):
    below = loss < threshold * l0
    return np.where(below.any(axis=-1), below.argmax(axis=-1), -1)


@pytest.fixture(scope="module")
def simple_runs():
    task = get_task("simple", T=101, target=0.5)
    config = TrainConfig(epochs=200, batch_size=1, optimizer="sgd", lr_rule="linear_gain", lr0=ETA0,
                         trainable=("wrec",), sv_top=5)
    ens = Ensemble.init(256, [0.0, 0.6], 2, 1, 1, nonlinearity="linear")
    return ens, train(ens, task, config)


def test_dw_is_rank_two_at_most(simple_runs):
    _, rec = simple_runs
    s = rec.sv_dw[:, -1]
    assert np.all(s[:, 2] / s[:, 0] < 1e-3)
    assert np.all(s[:, 0] > 0.1)


def test_learning_curves_collapse_on_effective_time(simple_runs):
    """With eta = eta0 (1 - g^2)^2 the effective time x = eta0 * epoch is the same grid for every g."""
    ens, rec = simple_runs
    conv = _conv_epoch(rec.loss, 0.5**2 / 2)
    assert np.all(conv > 0)
    x_c = ETA0 * conv
    g0, g6 = x_c[ens.g == 0.0].mean(), x_c[ens.g == 0.6].mean()
    assert g6 == pytest.approx(g0, rel=0.25)
    # and unnormalised, g = 0.6 would have needed 1 / (1 - 0.36)^2 ~ 2.4x as many epochs of plain tau:
    tau_c = rec.lr * conv
    assert tau_c[ens.g == 0.6].mean() < 0.6 * tau_c[ens.g == 0.0].mean()


def test_norm_dw_follows_first_order_scaling(simple_runs):
    ens, rec = simple_runs
    norm = np.sqrt(np.nansum(rec.sv_dw[:, -1] ** 2, axis=-1))
    ratio = norm[ens.g == 0.6].mean() / norm[ens.g == 0.0].mean()
    assert ratio == pytest.approx(1 - 0.6**2, rel=0.2)  # ||dW|| ~ zhat / beta


@pytest.mark.parametrize("g", [0.0, 0.6])
def test_epoch0_gradient_is_the_first_order_direction(g):
    """dL/dW at W0 is proportional to B^T w m^T B^T, B = (I - W0)^-1 (supplement eq. 10)."""
    n = 300
    task = get_task("simple", T=101, target=0.5)
    ens = Ensemble.init(n, [g], [3], 1, 1, nonlinearity="linear", dtype=torch.float64)
    batch = task.sample(1, None)
    lay = [to_kernel_layout(a, 1, torch.float64, "cpu") for a in (batch.inputs, batch.targets, batch.mask)]
    trace = kernels.forward(lay[0], ens.wi, ens.wrec, ens.wo, ens.b, ens.x0, task.dt, "linear")
    _, d_out = kernels.masked_mse(trace.outputs, lay[1], lay[2])
    grad = kernels.backward(trace, d_out, ens.wrec, ens.wo, task.dt, "linear", {"wrec"})["wrec"][0].numpy()
    w0 = ens.w0[0].numpy()
    m = ens.wi[0, 0].numpy() / np.sqrt(n)
    w = ens.wo[0, :, 0].numpy() * np.sqrt(n)
    b = np.linalg.inv(np.eye(n) - w0)
    direction = np.outer(b.T @ w, m @ b.T)
    cosine = -np.sum(grad * direction) / np.linalg.norm(grad) / np.linalg.norm(direction)
    assert cosine > 0.999


def test_divergence_for_large_target_and_gain():
    """SPEC 6 / Fig S4: zhat = 4 at g = 0.8 fails (Re lambda_1 crosses 1); zhat = 2 at g = 0.6 learns."""
    records = {}
    for zhat, eta0, g in ((2.0, 0.002, 0.6), (4.0, 0.001, 0.8)):
        task = get_task("simple", T=201, target=zhat)
        config = TrainConfig(epochs=200, batch_size=1, optimizer="sgd", lr_rule="linear_gain", lr0=eta0,
                             trainable=("wrec",), eig_top=3, sv_top=3)
        ens = Ensemble.init(128, [g], 2, 1, 1, nonlinearity="linear")
        records[zhat] = train(ens, task, config)
    fail = records[4.0]
    crossed = np.nanmax(fail.eig_w[..., 0].real, axis=1) > 1
    assert np.all((fail.diverged_epoch >= 0) | crossed)
    ok = records[2.0]
    assert np.all(ok.diverged_epoch == -1)
    assert np.all(np.nanmax(ok.eig_w[..., 0].real, axis=1) < 1)
    assert np.all(ok.loss[:, -1] < 0.2 * ok.loss[:, 0])


def test_first_order_theory_helpers_agree_with_learning_rule():
    g = np.array([0.0, 0.3, 0.6])
    np.testing.assert_allclose(theory.learning_rate(ETA0, g), TrainConfig(
        epochs=1, optimizer="sgd", lr_rule="linear_gain", lr0=ETA0).learning_rates(256, g))
