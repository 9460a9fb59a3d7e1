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


def test_dimensions_and_fit_match_numpy():
    x = RNG.standard_normal((2, 200, 10)) * np.linspace(3, 0.1, 10)  # decaying variances
    z = x @ RNG.standard_normal((2, 10, 2))
    u, s, vh = measures.pca(t(x))
    var, r2 = measures.explained(s, 10).numpy(), measures.fit_r2(u, s, t(z), 10).numpy()
    for e in range(2):
        xc = x[e] - x[e].mean(0)
        ev = np.sort(np.linalg.eigvalsh(xc.T @ xc))[::-1]
        np.testing.assert_allclose(var[e], np.cumsum(ev) / ev.sum(), rtol=1e-10)
        _, _, v = np.linalg.svd(xc, full_matrices=False)
        for k in range(1, 11):
            design = np.c_[np.ones(200), xc @ v[:k].T]
            coef = np.linalg.lstsq(design, z[e], rcond=None)[0]
            res = z[e] - design @ coef
            want = 1 - np.sum(res ** 2) / np.sum((z[e] - z[e].mean(0)) ** 2)
            assert r2[e, k - 1] == pytest.approx(want, abs=1e-10)
        assert measures.first_reaching(t(var[e]), 0.9).item() == np.argmax(np.cumsum(ev) / ev.sum() >= 0.9) + 1


def test_fit_dimension_is_the_component_the_output_reads():
    x = RNG.standard_normal((200, 8)) * np.array([5, 4, 3, 2, 1, 0.5, 0.3, 0.1])
    u, s, vh = measures.pca(t(x[None]))
    scores = (x - x.mean(0)) @ vh[0].numpy().T
    for j in (0, 2):  # the output is the first, then the third component: D_fit,90 = 1, then 3
        r2 = measures.fit_r2(u, s, t(scores[None, :, j:j + 1] * 2 + 1), 8)
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
