"""Cosines between dW's top singular vectors and the vectors the linear theory names.

To first order in learning time the theory gives dW = zhat B^T w m^T B^T (SPEC T, B = (I - W0)^-1,
m the input and w the output vector), so its left singular vector is u1 ∝ B^T w and its right
one v1 ∝ B m. For several channels, one direction per input (B m_i) and per output (B^T w_j).
Cosines are absolute values (an SVD fixes singular vectors only up to sign). The vectors are the
initial ones (wi0, wo0), as in the theory; for nonlinear runs the same directions are a new
measurement (the theory does not claim them there).
"""

from __future__ import annotations

import numpy as np
import torch


def reference_vectors(wi: torch.Tensor, wo: torch.Tensor, w0: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """Unit vectors (E, V, N) and their names: in_i (rows of wi), out_j (columns of wo),
    B_in_i = B m_i and Bt_out_j = B^T w_j."""
    wi, wo, w0 = wi.double(), wo.double(), w0.double()
    n = w0.shape[-1]
    a = torch.eye(n, dtype=torch.float64) - w0  # B = a^-1
    m = wi.transpose(1, 2)  # (E, N, N_in)
    w = wo  # (E, N, N_out)
    b_m = torch.linalg.solve(a, m)
    bt_w = torch.linalg.solve(a.transpose(1, 2), w)
    vecs = torch.cat([m, w, b_m, bt_w], dim=-1).transpose(1, 2)
    names = ([f"in_{i}" for i in range(m.shape[-1])] + [f"out_{j}" for j in range(w.shape[-1])]
             + [f"B_in_{i}" for i in range(m.shape[-1])] + [f"Bt_out_{j}" for j in range(w.shape[-1])])
    return vecs / vecs.norm(dim=-1, keepdim=True), names


def singular_alignment(dw: torch.Tensor, refs: torch.Tensor, n_dirs: int) -> tuple[np.ndarray, np.ndarray]:
    """|cos| of the top ``n_dirs`` left and right singular vectors of ``dw`` (E, R, N, N) with
    ``refs`` (E, V, N): two arrays (E, R, d, V). A zero dW (epoch 0) gives NaN."""
    dw = dw.double()
    u, s, vh = torch.linalg.svd(dw, full_matrices=False)
    d = min(n_dirs, dw.shape[-1])
    left = (u[..., :d].transpose(-1, -2) @ refs[:, None].transpose(-1, -2)).abs()
    right = (vh[..., :d, :] @ refs[:, None].transpose(-1, -2)).abs()
    zero = (s[..., :1] == 0)[..., None]
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    return torch.where(zero, nan, left).numpy(), torch.where(zero, nan, right).numpy()
