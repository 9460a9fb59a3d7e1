"""Spectra recorded during training: subspace tracking of top SVs, sorted eigenvalues."""

import numpy as np
import pytest
import torch

from randstruct.engine.model import Ensemble
from randstruct.engine.spectra import SubspaceTracker, leading_eigenvalues
from randstruct.tasks import get_task
from randstruct.engine.train import TrainConfig, train


def test_leading_eigenvalues_sorted_by_real_then_imaginary():
    w = torch.tensor([[[0.0, -2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.5]]], dtype=torch.float64)
    ev = leading_eigenvalues(w).numpy()[0]
    np.testing.assert_allclose(ev, [0.5, 2j, -2j], atol=1e-12)
    assert leading_eigenvalues(w, 2).shape == (1, 2)


def test_subspace_tracker_matches_full_svd_on_low_rank_plus_noise():
    gen = torch.Generator().manual_seed(0)
    n = 300
    u, v = torch.randn(2, n, 3, generator=gen, dtype=torch.float64), torch.randn(2, n, 3, generator=gen, dtype=torch.float64)
    a = u * torch.tensor([5.0, 1.0, 0.01], dtype=torch.float64) @ v.transpose(1, 2) / n
    a = a + 1e-7 * torch.randn(2, n, n, generator=gen, dtype=torch.float64)
    tracker = SubspaceTracker(3, torch.randn(2, n, 8, generator=gen, dtype=torch.float64))
    full = torch.linalg.svdvals(a)[:, :3]
    torch.testing.assert_close(tracker(a), full, rtol=1e-8, atol=0)
    a2 = a + 0.01 * u[..., :1] @ v[..., 1:2].transpose(1, 2) / n  # a small change: the warm start carries over
    torch.testing.assert_close(tracker(a2), torch.linalg.svdvals(a2)[:, :3], rtol=1e-8, atol=0)
    with pytest.raises(ValueError, match="at least k = 3 columns"):
        SubspaceTracker(3, torch.zeros(1, 5, 2))


def test_training_record_subspace_equals_full_for_leading_svs():
    task = get_task("simple", T=20)
    kw = dict(epochs=15, batch_size=1, optimizer="sgd", lr_rule="linear_gain", lr0=0.05, trainable=("wrec",),
              sv_top=3, eig_top=4)
    recs = {}
    for method in ("full", "subspace"):
        ens = Ensemble.init(64, [0.0, 0.6], 1, 1, 1, nonlinearity="linear", dtype=torch.float64)
        recs[method] = train(ens, task, TrainConfig(sv_method=method, **kw))
    full, sub = recs["full"].sv_dw, recs["subspace"].sv_dw
    assert full.shape == sub.shape == (2, 15, 3)
    # the two leading SVs of dW carry the learning (rank ~2); both methods agree on them
    # (after one update dW is exactly rank one: s2 is float64 round-off there, hence the atol)
    np.testing.assert_allclose(sub[:, 1:, :2], full[:, 1:, :2], rtol=1e-7, atol=1e-14)
    ev = recs["full"].eig_w
    assert ev.shape == (2, 15, 4) and np.iscomplexobj(ev)
    assert np.all(np.diff(ev.real, axis=-1) <= 1e-12)


def test_auto_method_choice():
    assert TrainConfig(epochs=1, sv_top=5).uses_subspace(1024)
    assert not TrainConfig(epochs=1, sv_top=5).uses_subspace(32)
    assert not TrainConfig(epochs=1).uses_subspace(1024)
    with pytest.raises(ValueError, match="needs sv_top"):
        TrainConfig(epochs=1, sv_method="subspace")


def test_cosine_initial_state_is_the_shared_vector():
    ens = Ensemble.init(50, [0.4], 1, 1, 1, nonlinearity="linear", shared_vector=True, x0_from_input=True)
    torch.testing.assert_close(ens.x0[0], ens.wi[0, 0])
    assert ens.x0[0].norm().item() == pytest.approx(np.sqrt(50), rel=1e-6)
    # initial readout z = w^T x0 = v^T v / N = 1 (SPEC 7.1); with dt = 0.1 the first output is close to it
    task = get_task("cosine")
    out = ens.simulate(task.sample(1, None).inputs, task.dt)
    assert out[0, 0, 0, 0].item() == pytest.approx(1.0, abs=0.15)


def test_the_default_iterations_converge_from_a_cold_start():
    """Two block power steps per call (the default) bring a random start within 1e-4 of the top
    singular values when the tail sits at 0.3 of the third (one step leaves ~1e-2)."""
    gen = torch.Generator().manual_seed(1)
    n = 200
    q1 = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64)).Q
    q2 = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64)).Q
    s = torch.cat([torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64), 0.3 * torch.rand(n - 3, generator=gen,
                                                                                      dtype=torch.float64)])
    a = ((q1 * s) @ q2.T)[None]
    tracker = SubspaceTracker(3, torch.randn(1, n, 8, generator=gen, dtype=torch.float64))
    assert (tracker(a)[0] - s[:3]).abs().max() < 1e-4 * s[0]
