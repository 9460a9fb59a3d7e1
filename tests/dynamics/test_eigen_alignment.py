"""Outlier eigenvalues and the alignment of dW with the theory's directions, against NumPy
computations written here (issue 22 item 7: these modules had no test)."""

import numpy as np
import torch

from randstruct.dynamics import alignment, eigen


def _w0(n, g, seed):
    return g * np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)


def test_outliers_are_the_eigenvalues_outside_the_bulk_disc():
    n, g = 120, 0.6
    w0 = np.stack([_w0(n, g, 0), _w0(n, g, 1)])
    rng = np.random.default_rng(2)
    u, v = rng.standard_normal((2, n, 1)), rng.standard_normal((2, n, 1))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    dw = 1.5 * u @ v.transpose(0, 2, 1) + 1.5 * u @ u.transpose(0, 2, 1)  # one outlier near 1.5 (u^T u = 1)
    w = w0 + dw
    eig, count, align = eigen.outliers(torch.as_tensor(w)[:, None], torch.as_tensor(w0), np.array([g, g]), margin=0.1,
                                       n_dirs=1)
    for m in range(2):
        ev, vec = np.linalg.eig(w[m])
        out = np.abs(ev) > g + 0.1
        assert count[m, 0] == out.sum() >= 1
        np.testing.assert_allclose(np.sort_complex(eig[m, 0][:count[m, 0]]), np.sort_complex(ev[out]), atol=1e-10)
        assert np.isnan(eig[m, 0][count[m, 0]:]).all()
        # the alignment: |projection of the unit eigenvector on dW's top left singular vector|
        top = np.linalg.svd(dw[m])[0][:, 0]
        k = np.argmax(np.where(out, ev.real, -np.inf))
        expected = np.abs(top @ vec[:, k]) / np.linalg.norm(vec[:, k])
        np.testing.assert_allclose(align[m, 0, 0], expected, atol=1e-10)
    # a wider margin keeps only what lies beyond it
    _, wide, _ = eigen.outliers(torch.as_tensor(w)[:, None], torch.as_tensor(w0), np.array([g, g]), margin=10.0)
    assert (wide == 0).all()


def test_reference_vectors_and_singular_alignment_are_the_theorys_directions():
    n, e = 40, 2
    rng = np.random.default_rng(3)
    w0 = np.stack([_w0(n, 0.5, s) for s in range(e)])
    wi, wo = rng.standard_normal((e, 2, n)), rng.standard_normal((e, n, 1))
    refs, names = alignment.reference_vectors(torch.as_tensor(wi), torch.as_tensor(wo), torch.as_tensor(w0))
    assert names == ["in_0", "in_1", "out_0", "B_in_0", "B_in_1", "Bt_out_0"]
    for m in range(e):
        b = np.linalg.inv(np.eye(n) - w0[m])
        expected = [wi[m, 0], wi[m, 1], wo[m, :, 0], b @ wi[m, 0], b @ wi[m, 1], b.T @ wo[m, :, 0]]
        for got, want in zip(refs[m].numpy(), expected):
            np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-12)
    # dW = (B^T w)(B m)^T, the theory's first-order shape: its singular vectors are those directions
    bt_w = refs[:, 5].numpy()
    b_m = refs[:, 3].numpy()
    dw = np.einsum("ei,ej->eij", bt_w, b_m) + 1e-3 * rng.standard_normal((e, n, n)) / n
    left, right = alignment.singular_alignment(torch.as_tensor(dw)[:, None], refs, 2)
    assert left.shape == (e, 1, 2, 6)
    np.testing.assert_allclose(left[:, 0, 0, 5], 1, atol=1e-4)
    np.testing.assert_allclose(right[:, 0, 0, 3], 1, atol=1e-4)
    for m in range(e):
        u, _, vh = np.linalg.svd(dw[m])
        np.testing.assert_allclose(left[m, 0, :, :], np.abs(u[:, :2].T @ refs[m].numpy().T), atol=1e-10)
        np.testing.assert_allclose(right[m, 0, :, :], np.abs(vh[:2] @ refs[m].numpy().T), atol=1e-10)
    zero_left, _ = alignment.singular_alignment(torch.zeros(e, 1, n, n, dtype=torch.float64), refs, 2)
    assert np.isnan(zero_left).all()
