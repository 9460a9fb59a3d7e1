"""Outlier eigenvalues of W: those outside the disc of radius g that holds the bulk of a random
W0 = g J (circular law), with a stated absolute ``margin`` for the edge's finite-N spread, and how
much of each outlier's eigenvector lies in the span of dW's top left singular vectors."""

from __future__ import annotations

import numpy as np
import torch

from randstruct.engine.spectra import _lexsort_desc
from randstruct.errors import UserInputError

MARGIN = 0.1
N_DIRS = 4


def outliers(w: torch.Tensor, w0: torch.Tensor, g: np.ndarray, margin: float = MARGIN, n_dirs: int = N_DIRS):
    """For matrices ``w`` (E, R, N, N) with initial ``w0`` (E, N, N): outlier eigenvalues (E, R, M)
    padded with NaN, sorted by real part (descending), their count (E, R), and the fraction of each
    outlier eigenvector's norm in the span of the top ``n_dirs`` left singular vectors of
    W - W0 at the same record (E, R, M)."""
    if not margin >= 0:
        raise UserInputError(f"margin must be >= 0, got {margin}")
    w = w.double()
    val, vec = torch.linalg.eig(w)
    order = _lexsort_desc(val.real, val.imag)
    val = val.gather(-1, order)
    vec = vec.gather(-1, order[..., None, :].expand_as(vec))
    radius = torch.as_tensor(np.asarray(g, float), dtype=torch.float64)[:, None, None] + margin
    out = val.abs() > radius
    count = out.sum(-1)
    m = max(int(count.max()) if count.numel() else 0, 1)
    u = torch.linalg.svd(w - w0.double()[:, None], full_matrices=False)[0][..., :min(n_dirs, w.shape[-1])]
    proj = (u.transpose(-1, -2).to(vec.dtype) @ vec).abs().norm(dim=-2) / vec.abs().norm(dim=-2)
    eig = np.full(val.shape[:-1] + (m,), np.nan + 0j)
    align = np.full(val.shape[:-1] + (m,), np.nan)
    v_np, p_np, o_np = val.numpy(), proj.numpy(), out.numpy()
    for idx in np.ndindex(*o_np.shape[:-1]):
        sel = np.flatnonzero(o_np[idx])
        eig[idx][:len(sel)] = v_np[idx][sel]
        align[idx][:len(sel)] = p_np[idx][sel]
    return eig, count.numpy(), align
