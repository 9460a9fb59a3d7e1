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


def fit_r2(u: torch.Tensor, s: torch.Tensor, z: torch.Tensor, n: int) -> torch.Tensor:
    """R^2 of the least-squares fit (with intercept) of the outputs z (..., S, n_out) from the
    leading 1..n principal components. The scores of different components are orthogonal, so the
    fit on the first k is the projection on U_k and R^2(k) = sum_{j<=k} |U_j^T z_c|^2 / |z_c|^2
    (components of zero variance contribute nothing)."""
    zc = center_samples(z)
    proj = (u.transpose(-1, -2) @ zc).pow(2).sum(-1) * (s > s[..., :1] * 1e-12)
    total = zc.pow(2).sum((-1, -2))[..., None].clamp_min(torch.finfo(zc.dtype).tiny)
    return _pad(proj.cumsum(-1) / total, n)


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
