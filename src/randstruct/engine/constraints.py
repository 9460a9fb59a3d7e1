"""Dale's law and sparse connectivity (docs/model.md).

Parametrization (PsychRNN's): the trained parameter ``wrec`` is mapped to the recurrent matrix
    W = |wrec| * s[None, :] * M
with s the column (presynaptic) signs, +1 for the first round(dale N) units and -1 for the rest,
and M a fixed 0/1 mask. The map is idempotent (W of a W is that W), so the effective W is what
runs store and what a loaded ensemble trains or simulates; dW = W - W0 is taken on W. Without
Dale or sparsity W is ``wrec`` itself (the same tensor: the defaults are untouched).

W0 under Dale is balanced (every row sums to zero, so a uniform rate gives zero mean input and
the mean connectivity adds no outlier eigenvalue) and scaled so that its bulk has radius g.
"""

from __future__ import annotations

import numpy as np
import torch

from randstruct.engine.options import ModelOptions
from randstruct.engine.seeding import member_rng
from randstruct.errors import UserInputError


def column_signs(n: int, dale: float) -> np.ndarray:
    """+1 for the first round(dale N) units (at least one, at most N - 1), -1 for the others."""
    n_exc = min(n - 1, max(1, round(dale * n)))
    return np.where(np.arange(n) < n_exc, 1.0, -1.0)


def draw_mask(n: int, sparsity: float, g: float, seed: int) -> np.ndarray:
    """A member's fixed mask: each connection present with probability 1 - sparsity (own stream)."""
    return member_rng(seed, g, "mask").random((n, n)) >= sparsity


def balanced_w0(z: np.ndarray, g: float, sign: np.ndarray | None, mask: np.ndarray | None,
                sparsity: float = 0.0) -> np.ndarray:
    """W0 from standard normals ``z`` (N, N): g z / sqrt(N) without constraints (SPEC 1.2);
    g z M / sqrt(N (1 - sparsity)) with a mask; under Dale magnitudes |z| M with the column signs,
    the inhibitory entries of each row scaled so the row sums to zero, and the whole scaled so that
    N times the mean over columns of the entries' variance (the bulk radius squared) is g^2."""
    n = z.shape[-1]
    if sign is None:
        return g * z / np.sqrt(n) if mask is None else g * z * mask / np.sqrt(n * (1.0 - sparsity))
    m = np.abs(z) if mask is None else np.abs(z) * mask
    exc = sign > 0
    e_sum, i_sum = m[:, exc].sum(1), m[:, ~exc].sum(1)
    both = (e_sum > 0) & (i_sum > 0)
    m[:, ~exc] *= np.where(both, e_sum / np.where(both, i_sum, 1.0), 1.0)[:, None]
    w = m * sign
    spread = np.sqrt(n * w.var(axis=0).mean())
    return w * (g / spread) if spread > 0 else w


def draw_w0(n: int, g: float, seed: int, options: ModelOptions = ModelOptions()) -> np.ndarray:
    """A member's W0 (float64) and its mask (or None): normals from the member's "w0" stream."""
    z = member_rng(seed, g, "w0").standard_normal((n, n))
    mask = draw_mask(n, options.sparsity, g, seed) if options.sparsity > 0 else None
    sign = column_signs(n, options.dale) if options.dale is not None else None
    return balanced_w0(z, g, sign, mask, options.sparsity), mask


def effective(wrec: torch.Tensor, sign: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
    """W = |wrec| s M for ``wrec`` (E, N, N), ``sign`` (E, N), ``mask`` (E, N, N); ``wrec`` itself
    when both are None."""
    w = wrec if sign is None else wrec.abs() * sign[:, None, :]
    return w if mask is None else w * mask


def chain(grad: torch.Tensor, wrec: torch.Tensor, sign: torch.Tensor | None,
          mask: torch.Tensor | None) -> torch.Tensor:
    """dL/dwrec from dL/dW. d(s |w|)/dw = s sign(w), taken as +1 at w = 0 (so a weight at zero,
    e.g. every weight of a g = 0 network, can grow in its allowed direction)."""
    if sign is not None:
        col = sign[:, None, :]
        grad = grad * torch.where(wrec * col >= 0, 1.0, -1.0).to(grad.dtype)
    return grad if mask is None else grad * mask


def shuffle_constrained(w0: np.ndarray, g: float, variant: str, rng: np.random.Generator,
                        options: ModelOptions) -> np.ndarray:
    """Shuffle controls that keep the column signs and (except "rowcol") the zero pattern.

    "full" permutes the magnitudes of the present entries among the present positions, within
    excitatory and within inhibitory columns; "rowcol" permutes rows, and columns within each
    sign (the zero pattern moves with the entries); "resample" draws a fresh W0 of the same kind
    on the same mask.
    """
    n = w0.shape[-1]
    sign = column_signs(n, options.dale) if options.dale is not None else np.ones(n)
    present = w0 != 0
    groups = [sign > 0, sign < 0]
    if variant == "full":
        mag = np.zeros_like(w0)
        for cols in groups:
            block, keep = np.abs(w0[:, cols]), present[:, cols]
            values = block[keep]
            block = np.zeros_like(block)
            block[keep] = values[rng.permutation(values.size)]
            mag[:, cols] = block
        return mag * sign
    if variant == "rowcol":
        cols = np.concatenate([rng.permutation(np.flatnonzero(c)) for c in groups])
        return w0[rng.permutation(n)][:, cols]  # E columns are the first ones: cols maps E to E
    if variant == "resample":
        mask = present if options.sparsity > 0 else None
        return balanced_w0(rng.standard_normal((n, n)), g, None if options.dale is None else sign, mask,
                           options.sparsity)
    raise UserInputError(f"unknown shuffle variant {variant!r}")
