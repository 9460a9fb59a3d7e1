"""The measures of the regime analyses against independent float64 NumPy/SciPy implementations
written here, on random data and on cases with known answers."""

import numpy as np
import pytest
import scipy.linalg
import torch

from randstruct.analysis import measures

RNG = np.random.default_rng(7)


def t(a):
    return torch.as_tensor(np.asarray(a, np.float64))


def np_gen_corr(w, x):
    w = w - w.mean(1, keepdims=True)
    x = x - x.mean(1, keepdims=True)
    return np.linalg.norm(w @ x.T) / np.sqrt(np.linalg.norm(w @ w.T) * np.linalg.norm(x.T @ x))


def np_cka(x, y):
    """Kornblith's HSIC form on the sample kernels K = X X^T, L = Y Y^T, H the centering matrix."""
    s = len(x)
    h = np.eye(s) - 1 / s
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    return np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_))


def np_procrustes(x, y):
    """min over orthogonal Q of the angle between Xc Q and Yc, from the orthogonal Procrustes solution."""
    x, y = x - x.mean(0), y - y.mean(0)
    q, _ = scipy.linalg.orthogonal_procrustes(x, y)
    cos = np.sum((x @ q) * y) / (np.linalg.norm(x) * np.linalg.norm(y))
    return np.arccos(np.clip(cos, -1, 1))


def test_gen_corr_matches_numpy_and_is_one_along_the_readout():
    w, x = RNG.standard_normal((3, 2, 20)), RNG.standard_normal((3, 50, 20))
    got = measures.gen_corr(t(w), t(x)).numpy()
    np.testing.assert_allclose(got, [np_gen_corr(a, b) for a, b in zip(w, x)], rtol=1e-12)
    # activity along one readout column: rho = 1, whatever the coefficients
    col = RNG.standard_normal(20)
    aligned = RNG.standard_normal((50, 1)) * col[None]
    assert measures.gen_corr(t(col[None, None]), t(aligned[None])).item() == pytest.approx(1, abs=1e-12)
    # orthogonal to it (after centering): rho = 0
    other = RNG.standard_normal(20)
    other -= other.mean()
    c = col - col.mean()
    other -= (other @ c) / (c @ c) * c
    ortho = RNG.standard_normal((50, 1)) * other[None]
    assert measures.gen_corr(t(col[None, None]), t(ortho[None])).item() == pytest.approx(0, abs=1e-12)


ALPHAS = np.logspace(-3, 6, 20)


def _ridge(x, z, a):
    mx, mz = x.mean(0), z.mean(0)
    beta = np.linalg.solve((x - mx).T @ (x - mx) + a * np.eye(x.shape[1]), (x - mx).T @ (z - mz))
    return lambda q: (q - mx) @ beta + mz


def loo_refit(x, z, a):
    """Mean squared leave-one-out error, refitting without each sample in turn."""
    keep = ~np.eye(len(x), dtype=bool)
    return np.mean([(z[i] - _ridge(x[keep[i]], z[keep[i]], a)(x[i])) ** 2 for i in range(len(x))])


def loo_hat(x, z, a):
    """The same from the hat matrix of the design [1, X] with the penalty diag(0, a, ..., a)."""
    d = np.c_[np.ones(len(x)), x]
    h = d @ np.linalg.solve(d.T @ d + np.diag(np.r_[0, np.full(x.shape[1], a)]), d.T)
    return np.mean(((z - h @ z) / (1 - np.diag(h))[:, None]) ** 2)


def np_ridge_heldout_r2(xtr, ztr, xte, zte, zmean, alphas=ALPHAS, loo=loo_refit):
    """Ridge with an unpenalized intercept, the penalty of least leave-one-out error (the first of
    equals), R^2 on the test samples against ``zmean``."""
    pred = _ridge(xtr, ztr, alphas[int(np.argmin([loo(xtr, ztr, a) for a in alphas]))])(xte)
    return 1 - np.sum((zte - pred) ** 2) / np.sum((zte - zmean) ** 2)


def test_ridge_heldout_r2_matches_leave_one_out_refits_in_numpy():
    # few samples (the intercept's leverage 1/S weighs), noise from 0.1 to 30: the penalty picked
    # differs between members; one direction nearly constant
    x = RNG.standard_normal((12, 14, 4)) * np.array([3, 1, 0.3, 0.01])
    noise = RNG.standard_normal((12, 14, 2)) * np.geomspace(0.1, 30, 12)[:, None, None]
    z = x @ RNG.standard_normal((12, 4, 2)) + noise
    z[1] *= 1e3
    got = measures.ridge_heldout_r2(t(x[:, :10]), t(z[:, :10]), t(x[:, 10:]), t(z[:, 10:]), t(z.mean(1)),
                                    t(ALPHAS)).numpy()
    want = [np_ridge_heldout_r2(x[e, :10], z[e, :10], x[e, 10:], z[e, 10:], z[e].mean(0)) for e in range(12)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert loo_hat(x[1], z[1], 2.0) == pytest.approx(loo_refit(x[1], z[1], 2.0), rel=1e-10)  # the plug-in test's


def test_dimensions_and_heldout_fit_match_numpy():
    x = RNG.standard_normal((2, 48, 6)) * np.linspace(3, 0.1, 6)  # decaying variances
    z = x @ RNG.standard_normal((2, 6, 2)) + 0.1 * RNG.standard_normal((2, 48, 2))
    u, s, vh = measures.pca(t(x))
    var = measures.explained(s, 8).numpy()
    r2 = measures.heldout_fit_r2(u * s[..., None, :], t(z), 36, 4, 8, t(ALPHAS)).numpy()
    for e in range(2):
        xc = x[e] - x[e].mean(0)
        ev = np.sort(np.linalg.eigvalsh(xc.T @ xc))[::-1]
        np.testing.assert_allclose(var[e, :6], np.cumsum(ev) / ev.sum(), rtol=1e-10)
        scores = xc @ np.linalg.svd(xc, full_matrices=False)[2].T
        want = [np_ridge_heldout_r2(scores[:36, :k], z[e, :36], scores[36:, :k], z[e, 36:], z[e].mean(0))
                for k in range(1, 5)]
        np.testing.assert_allclose(r2[e, :4], want, rtol=1e-9)
        assert np.isnan(r2[e, 4:]).all()  # beyond the components searched
        assert measures.first_reaching(t(var[e]), 0.9).item() == np.argmax(np.cumsum(ev) / ev.sum() >= 0.9) + 1
    # every component searched: the curve is padded with its last value
    full = measures.heldout_fit_r2(u * s[..., None, :], t(z), 36, 30, 8, t(ALPHAS)).numpy()
    np.testing.assert_allclose(full[:, :4], r2[:, :4], rtol=1e-12)
    assert (full[:, 6:] == full[:, 5:6]).all()


def test_fit_dimension_is_the_component_the_output_reads():
    x = RNG.standard_normal((200, 8)) * np.array([5, 4, 3, 2, 1, 0.5, 0.3, 0.1])
    u, s, vh = measures.pca(t(x[None]))
    scores = (x - x.mean(0)) @ vh[0].numpy().T
    for j in (0, 2):  # the output is the first, then the third component: D_fit,90 = 1, then 3
        r2 = measures.heldout_fit_r2(u * s[..., None, :], t(scores[None, :, j:j + 1] * 2 + 1), 150, 8, 8, t(ALPHAS))
        assert measures.first_reaching(r2, 0.9).item() == j + 1
    assert measures.first_reaching(t([[0.1, 0.5, 0.8]]), 0.9).item() == -1


def test_cka_matches_numpy_is_one_with_itself_and_invariant_to_rotations():
    x, y = RNG.standard_normal((3, 40, 6)), RNG.standard_normal((3, 40, 9))
    got = measures.linear_cka(t(x), t(y)).numpy()
    np.testing.assert_allclose(got, [np_cka(a, b) for a, b in zip(x, y)], rtol=1e-10)
    q = np.linalg.qr(RNG.standard_normal((6, 6)))[0]
    assert measures.linear_cka(t(x), t(x)).numpy() == pytest.approx(np.ones(3), abs=1e-12)
    assert measures.linear_cka(t(x), t(x @ q)).numpy() == pytest.approx(np.ones(3), abs=1e-12)
    np.testing.assert_allclose(measures.linear_cka(t(x @ q), t(y)).numpy(), got, rtol=1e-10)


def test_pairwise_cka_and_procrustes_match_numpy_per_pair():
    x = RNG.standard_normal((4, 30, 5))
    x[3] = x[0] @ np.linalg.qr(RNG.standard_normal((5, 5)))[0]  # a rotation of member 0
    cka, ang = (a.numpy() for a in measures.pairwise_cka_procrustes(t(x)))
    for i in range(4):
        for j in range(4):
            assert cka[i, j] == pytest.approx(np_cka(x[i], x[j]), abs=1e-10)
            assert ang[i, j] == pytest.approx(np_procrustes(x[i], x[j]), abs=1e-6)
    assert cka[0, 3] == pytest.approx(1, abs=1e-12) and ang[0, 3] == pytest.approx(0, abs=1e-6)
    assert np.diag(ang) == pytest.approx(np.zeros(4), abs=1e-6)


def test_principal_angles_match_scipy_and_vanish_for_the_same_subspace():
    q = np.stack([np.linalg.qr(RNG.standard_normal((12, 3)))[0] for _ in range(3)])
    q[2] = q[0] @ np.linalg.qr(RNG.standard_normal((3, 3)))[0]  # another basis of member 0's span
    got = measures.pairwise_principal_angles(t(q)).numpy()
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(got[i, j], np.sort(scipy.linalg.subspace_angles(q[i], q[j])), atol=1e-6)
    assert got[0, 2] == pytest.approx(np.zeros(3), abs=1e-6)


def test_participation_ratio_and_mds():
    s = RNG.random((3, 7))
    np.testing.assert_allclose(measures.participation_ratio(t(s)).numpy(),
                               (s ** 2).sum(1) ** 2 / (s ** 4).sum(1), rtol=1e-12)
    assert measures.participation_ratio(t([[2.0, 2.0, 2.0, 0.0]])).item() == pytest.approx(3)
    pts = RNG.standard_normal((6, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    emb = measures.classical_mds(t(d)).numpy()
    np.testing.assert_allclose(np.linalg.norm(emb[:, None] - emb[None], axis=-1), d, atol=1e-10)
