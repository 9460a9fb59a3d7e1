"""Initialisation conventions of SPEC 1.2 and the Ensemble container."""

import numpy as np
import pytest
import torch

from randstruct.engine.model import Ensemble, draw_vectors, draw_w0


def test_w0_statistics_follow_g_over_sqrt_n():
    n = 400
    for g in (0.5, 1.8):
        w0 = draw_w0(n, g, seed=1)
        assert w0.mean() == pytest.approx(0.0, abs=4 * g / n)
        assert w0.std() == pytest.approx(g / np.sqrt(n), rel=0.02)
        # bulk spectrum is the disk of radius g
        assert np.abs(np.linalg.eigvals(w0)).max() == pytest.approx(g, rel=0.1)


def test_vector_norms():
    n = 256
    wi, wo = draw_vectors(n, 4, 2, g=0.9, seed=3)
    assert wi.shape == (4, n) and wo.shape == (n, 2)
    np.testing.assert_allclose(np.linalg.norm(wi, axis=1), np.sqrt(n))
    np.testing.assert_allclose(np.linalg.norm(wo, axis=0), 1 / np.sqrt(n))


def test_grid_order_and_independent_draws():
    ens = Ensemble.init(16, [0.0, 0.9, 1.8], 2, 2, 1)
    np.testing.assert_array_equal(ens.g, [0, 0, 0.9, 0.9, 1.8, 1.8])
    np.testing.assert_array_equal(ens.seed, [0, 1, 0, 1, 0, 1])
    assert torch.count_nonzero(ens.w0[:2]) == 0
    # same seed, different g: fresh draws (not the same J rescaled)
    j1, j2 = ens.w0[2] / 0.9, ens.w0[4] / 1.8
    assert not torch.allclose(j1, j2)
    assert not torch.allclose(ens.wi[2], ens.wi[4])
    torch.testing.assert_close(ens.wrec, ens.w0)
    assert ens.dtype == torch.float32


def test_member_draws_do_not_depend_on_the_ensemble():
    big = Ensemble.init(12, [0.3, 1.2], [4, 7], 1, 2)
    alone = Ensemble.init(12, [1.2], [7], 1, 2)
    torch.testing.assert_close(big.select(3).w0, alone.w0)
    torch.testing.assert_close(big.select([3]).wo, alone.wo)


def test_shared_vector():
    ens = Ensemble.init(32, [0.4], 1, 1, 1, nonlinearity="linear", shared_vector=True)
    torch.testing.assert_close(ens.wo[0, :, 0], ens.wi[0, 0] / 32)


def test_from_arrays_single_network_and_simulate():
    rng = np.random.default_rng(0)
    w, wi, wo = rng.normal(size=(6, 6)) / 6, rng.normal(size=(2, 6)), rng.normal(size=(6, 1))
    ens = Ensemble.from_arrays(wrec=w, wi=wi, wo=wo, dtype=torch.float64)
    assert ens.size == 1 and ens.n == 6 and ens.n_in == 2 and ens.n_out == 1
    out, rates = ens.simulate(rng.normal(size=(3, 5, 2)), dt=0.5, return_rates=True)
    assert out.shape == (1, 3, 5, 1) and rates.shape == (1, 3, 5, 6)
    torch.testing.assert_close(out, rates @ ens.wo[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=1), "N must be an integer >= 2"),
        (dict(g=[-0.1]), "g must be finite numbers >= 0"),
        (dict(seeds=0), "seeds must be a count >= 1"),
        (dict(nonlinearity="sigmoid"), "unknown nonlinearity 'sigmoid'"),
    ],
)
def test_bad_init_arguments(kwargs, match):
    args = dict(n=8, g=[0.5], seeds=1, n_in=1, n_out=1) | kwargs
    with pytest.raises(ValueError, match=match):
        Ensemble.init(**args)


def test_shape_validation():
    ens = Ensemble.init(8, [0.5], 1, 1, 1)
    with pytest.raises(ValueError, match="wo must have shape"):
        ens.replace(wo=torch.zeros(1, 7, 1))


def test_from_arrays_copies_the_callers_arrays():
    """Training an ensemble made from the user's float64 arrays leaves those arrays as they were."""
    import randstruct as rs

    rng = np.random.default_rng(0)
    wrec, wi, wo = rng.standard_normal((6, 6)) / 6, rng.standard_normal((2, 6)), rng.standard_normal((6, 2)) / 6
    kept = [a.copy() for a in (wrec, wi, wo)]
    ens = Ensemble.from_arrays(wrec=wrec, wi=wi, wo=wo, g=[0.5], seed=[0], dtype=torch.float64)
    rs.train(ens, rs.get_task("flipflop", T=10), rs.TrainConfig(epochs=3, batch_size=2, lr0=1.0))
    assert not np.array_equal(ens.wrec[0].numpy(), kept[0])  # it trained
    for a, b in zip((wrec, wi, wo), kept):
        np.testing.assert_array_equal(a, b)


def test_the_default_record_step_is_epochs_over_200():
    """The API records dW every epochs/200 epochs by default, as the CLI does (issue 22 item 11)."""
    import randstruct as rs

    assert rs.TrainConfig(epochs=1000).rec_step == 5 and rs.TrainConfig(epochs=50).rec_step == 1
    assert rs.TrainConfig(epochs=1000, rec_step=1).rec_step == 1
