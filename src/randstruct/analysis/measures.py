"""Batched measures of activity and weights for the regime analyses (analysis/regimes.py,
analysis/similarity.py), in float64 torch; a leading batch axis (members, or pairs of members) on
every argument. Activity is (..., S, N): S samples (trial x step) of N units."""

from __future__ import annotations

import torch


def center_rows(a: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean over the last axis (the centering of Schuessler et al. 2024's gen_corr)."""
    return a - a.mean(-1, keepdim=True)


def center_samples(x: torch.Tensor) -> torch.Tensor:
    """Each unit (column) minus its mean over the samples: PCA's and CKA's centering."""
    return x - x.mean(-2, keepdim=True)


def gen_corr(wout: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """rho = ||W X^T||_F / sqrt(||W W^T||_F ||X^T X||_F), rows of W (..., n_out, N) and X (..., S, N)
    centered over the units; 0 where either is 0."""
    w, x = center_rows(wout), center_rows(x)
    num = torch.linalg.matrix_norm(w @ x.transpose(-1, -2))
    den = torch.sqrt(torch.linalg.matrix_norm(w @ w.transpose(-1, -2))
                     * torch.linalg.matrix_norm(x.transpose(-1, -2) @ x))
    return torch.where(den > 0, num / torch.where(den > 0, den, 1), 0)


def pca(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD of the sample-centered activity: U (..., S, p), s (..., p), V^T (..., p, N), p = min(S, N)."""
    return torch.linalg.svd(center_samples(x), full_matrices=False)


def explained(s: torch.Tensor, n: int) -> torch.Tensor:
    """Cumulative fraction of the variance in the leading 1..n components (padded with the total)."""
    var = s ** 2
    cum = var.cumsum(-1) / var.sum(-1, keepdim=True).clamp_min(torch.finfo(var.dtype).tiny)
    return _pad(cum, n)


def ridge_heldout_r2(x_train: torch.Tensor, z_train: torch.Tensor, x_test: torch.Tensor, z_test: torch.Tensor,
                     z_mean: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """R^2 on held-out samples of a ridge regression with intercept (unpenalized) of outputs z from
    features x, fitted on the training samples (..., S, k), (..., S, n_out), the penalty picked from
    ``alphas`` by the least mean squared leave-one-out error on the training samples (the rule of
    scikit-learn's RidgeCV). R^2 = 1 - |z_test - fit|^2 / |z_test - z_mean|^2 (z_mean (..., n_out))."""
    mx, mz = x_train.mean(-2, keepdim=True), z_train.mean(-2, keepdim=True)
    xc, zc = x_train - mx, z_train - mz
    lam, vec = torch.linalg.eigh(xc.transpose(-1, -2) @ xc)
    p = xc @ vec  # training features in the eigenbasis of their Gram matrix
    shrink = 1 / (lam.clamp_min(0)[..., None, :] + alphas[:, None])  # (..., A, k)
    coef = shrink[..., None] * (p.transpose(-1, -2) @ zc)[..., None, :, :]  # (..., A, k, n_out)
    resid = zc[..., None, :, :] - p[..., None, :, :] @ coef
    hat = 1 / x_train.shape[-2] + (p.pow(2)[..., None, :, :] * shrink[..., None, :]).sum(-1)  # (..., A, S)
    loo = torch.nan_to_num((resid / (1 - hat)[..., None]).pow(2).mean((-1, -2)), nan=torch.inf)
    best = loo.argmin(-1)  # the first (smallest) penalty of the least error
    c = torch.take_along_dim(coef, best[..., None, None, None], -3).squeeze(-3)
    fit = (x_test - mx) @ vec @ c + mz
    den = (z_test - z_mean[..., None, :]).pow(2).sum((-1, -2))
    num = (z_test - fit).pow(2).sum((-1, -2))
    return 1 - num / den.clamp_min(torch.finfo(den.dtype).tiny)


def heldout_fit_r2(scores: torch.Tensor, z: torch.Tensor, n_train: int, k_max: int, n: int,
                   alphas: torch.Tensor) -> torch.Tensor:
    """Held-out R^2 (ridge_heldout_r2) of the outputs z (..., S, n_out) from the leading 1..k_max
    principal component scores (..., S, p), trained on the first ``n_train`` samples and tested on
    the others (on the same ones when there are no others); length n: padded with the last value
    when every component was used, NaN beyond k_max otherwise."""
    tr, te = slice(0, n_train), slice(n_train if n_train < z.shape[-2] else 0, None)
    k_max = min(k_max, scores.shape[-1])
    curve = torch.stack([ridge_heldout_r2(scores[..., tr, :k], z[..., tr, :], scores[..., te, :k], z[..., te, :],
                                          z.mean(-2), alphas) for k in range(1, k_max + 1)], -1)
    if k_max == scores.shape[-1]:
        return _pad(curve, n)
    return torch.cat([curve, curve.new_full(curve.shape[:-1] + (n - k_max,), float("nan"))], -1)[..., :n]


def first_reaching(curve: torch.Tensor, level: float) -> torch.Tensor:
    """1-based index of the first entry >= level along the last axis; -1 if none."""
    hit = curve >= level
    return torch.where(hit.any(-1), hit.int().argmax(-1) + 1, -1)


def participation_ratio(s: torch.Tensor) -> torch.Tensor:
    """(sum s^2)^2 / sum s^4 of singular values s: the effective rank; 0 for a zero matrix."""
    e = s ** 2
    den = (e ** 2).sum(-1)
    return torch.where(den > 0, e.sum(-1) ** 2 / torch.where(den > 0, den, 1), 0)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA (Kornblith et al. 2019) of X (..., S, N1) and Y (..., S, N2) on the same samples:
    ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), columns centered; 0 where either is constant."""
    x, y = center_samples(x), center_samples(y)
    num = torch.linalg.matrix_norm(y.transpose(-1, -2) @ x) ** 2
    den = torch.linalg.matrix_norm(x.transpose(-1, -2) @ x) * torch.linalg.matrix_norm(y.transpose(-1, -2) @ y)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1), 0)


def pairwise_cross(a: torch.Tensor) -> torch.Tensor:
    """All blocks A_i^T A_j (E, E, N, N) of a (E, S, N) stack, as one matmul of (S, E N)."""
    e, s, n = a.shape
    flat = a.permute(1, 0, 2).reshape(s, e * n)
    return (flat.T @ flat).reshape(e, n, e, n).permute(0, 2, 1, 3)


def pairwise_cka_procrustes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear CKA (E, E) and Procrustes angle (E, E) of every pair of members' activity (E, S, N)
    on the same samples. The angle is arccos(||Xi^T Xj||_* / (||Xi||_F ||Xj||_F)), the rotation-
    invariant shape distance of Williams et al. 2021 (their ridge-CCA with alpha = 1)."""
    xc = center_samples(x)
    cross = pairwise_cross(xc)
    fro = torch.linalg.matrix_norm(cross)
    self_fro = torch.diagonal(fro)
    den = self_fro[:, None] * self_fro[None, :]
    cka = torch.where(den > 0, fro ** 2 / torch.where(den > 0, den, 1), 0)
    nuc = torch.linalg.svdvals(cross).sum(-1)
    norms = torch.linalg.matrix_norm(xc)
    nden = norms[:, None] * norms[None, :]
    cos = torch.where(nden > 0, nuc / torch.where(nden > 0, nden, 1), 0)
    return cka, torch.arccos(cos.clamp(-1, 1))


def pairwise_principal_angles(q: torch.Tensor) -> torch.Tensor:
    """Principal angles (E, E, k), ascending, between the column spaces of orthonormal bases q (E, N, k)."""
    cos = torch.linalg.svdvals(pairwise_cross(q))
    return torch.arccos(cos.clamp(-1, 1))


def classical_mds(d: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """Coordinates (E, dims) whose distances best match the dissimilarities d (E, E) (Torgerson)."""
    e = d.shape[0]
    j = torch.eye(e, dtype=d.dtype) - 1.0 / e
    b = -0.5 * j @ (d ** 2) @ j
    val, vec = torch.linalg.eigh(b)
    val, vec = val.flip(-1)[:dims], vec.flip(-1)[:, :dims]
    out = vec * val.clamp_min(0).sqrt()
    return torch.cat([out, out.new_zeros(e, dims - out.shape[1])], 1) if out.shape[1] < dims else out


def _pad(a: torch.Tensor, n: int) -> torch.Tensor:
    """The last axis cut or padded to length n with its last value."""
    if a.shape[-1] >= n:
        return a[..., :n]
    return torch.cat([a, a[..., -1:].expand(*a.shape[:-1], n - a.shape[-1])], -1)
