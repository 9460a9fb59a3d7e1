"""What can be read from the weights alone: W0 controls (shuffles), singular values and
eigenvalues of W0, W and dW, and the first index at which a loss curve falls below a threshold
(convergence epoch over epochs, functional rank over truncation ranks)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import xarray as xr

from randstruct.engine.constraints import shuffle_constrained
from randstruct.engine.options import ModelOptions
from randstruct.engine.spectra import leading_eigenvalues
from randstruct.errors import UserInputError

SHUFFLE_VARIANTS = ("full", "rowcol", "resample")
SHUFFLE_CODES = {"full": 1, "rowcol": 2, "resample": 3}


def shuffle_w0(w0: np.ndarray, g: float, variant: str, rng: np.random.Generator,
               options: ModelOptions = ModelOptions()) -> np.ndarray:
    """A control for W0 (see ``DESCRIPTIONS``): "full", "rowcol" or "resample"; under Dale's law or
    sparsity one that keeps the column signs and the zero pattern (see ``shuffle_constrained``)."""
    if options.constrained:
        if variant not in SHUFFLE_VARIANTS:
            raise UserInputError(f"unknown shuffle variant {variant!r}; allowed: {', '.join(SHUFFLE_VARIANTS)}")
        return shuffle_constrained(w0, g, variant, rng, options)
    n = w0.shape[-1]
    if variant == "full":
        return w0.reshape(-1)[rng.permutation(n * n)].reshape(w0.shape)
    if variant == "rowcol":
        return w0[rng.permutation(n)][:, rng.permutation(n)]
    if variant == "resample":
        return g * rng.standard_normal((n, n)) / np.sqrt(n)
    raise UserInputError(f"unknown shuffle variant {variant!r}; allowed: {', '.join(SHUFFLE_VARIANTS)}")


def svd64(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched float64 SVD; refuses non-finite weights with the offending members named."""
    bad = (~torch.isfinite(m.reshape(m.shape[0], -1)).all(dim=1)).nonzero().flatten().tolist()
    if bad:
        raise UserInputError(f"cannot analyse non-finite weights (members {bad})")
    return torch.linalg.svd(m.double(), full_matrices=False)


def low_rank(u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """The best rank-r_i approximation sum_{k < r_i} s_ik u_ik vh_ik of each matrix i from its SVD
    (``u`` (M, N, K), ``s`` (M, K), ``vh`` (M, K, N), ``ranks`` (M,)); the one truncation every
    analysis uses. A rank <= 0 gives zeros."""
    top = max(int(ranks.max()), 0) if ranks.numel() else 0
    keep = s[:, :top] * (torch.arange(top, device=s.device) < ranks[:, None])
    return (u[:, :, :top] * keep[:, None, :]) @ vh[:, :top]


def sv_stats(s: np.ndarray, ranks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(||dW - dW_r||_F, explained fraction) at ``ranks`` from descending singular values (..., n)."""
    s2 = np.asarray(s, dtype=np.float64) ** 2
    tail = np.flip(np.cumsum(np.flip(s2, -1), -1), -1)  # tail[..., r] = sum_{k >= r} s_k^2 (0-based)
    tail = np.concatenate([tail, np.zeros(s2.shape[:-1] + (1,))], -1)
    total = tail[..., :1]
    idx = np.asarray(ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(total > 0, 1.0 - tail[..., idx] / total, np.nan)
    return np.sqrt(tail[..., idx]), explained


def connectivity_spectra(w0: np.ndarray | torch.Tensor, w: np.ndarray | torch.Tensor,
                         n_sv: int | None = None) -> xr.Dataset:
    """Eigenvalues and singular values of W0, W and dW, (net, eig) and (net, sv), in float64.

    ``n_sv`` keeps only the largest singular values (to match a run that recorded only those).
    """
    w0_t = torch.as_tensor(w0).double()
    w_t = torch.as_tensor(w).double()
    mats = {"w0": w0_t, "w": w_t, "dw": w_t - w0_t}
    n = w_t.shape[-1]
    n_sv = n if n_sv is None else min(n_sv, n)
    out = {f"eig_{k}": (("net", "eig"), leading_eigenvalues(m).cpu().numpy()) for k, m in mats.items()}
    for k, m in mats.items():
        out["sv_final_dw" if k == "dw" else f"sv_{k}"] = (("net", "sv"), svd64(m)[1][:, :n_sv].cpu().numpy())
    return xr.Dataset(out, coords={"eig": np.arange(1, n + 1), "sv": np.arange(1, n_sv + 1)})


def first_below(values: np.ndarray, reference: np.ndarray, threshold: float, labels: np.ndarray) -> np.ndarray:
    below = values < threshold * reference[..., None]
    return np.where(below.any(-1), labels[below.argmax(-1)], -1).astype(np.int64)


def convergence_epoch(loss: np.ndarray | xr.DataArray, threshold: float = 0.05) -> np.ndarray | xr.DataArray:
    """First epoch with loss < threshold * loss at epoch 0 (last axis / dim ``epoch``); -1 if never."""
    if isinstance(loss, xr.DataArray):
        da = loss.transpose(..., "epoch")
        labels = da.epoch.values if "epoch" in da.coords else np.arange(da.sizes["epoch"])
        res = first_below(da.values, da.values[..., 0], threshold, labels)
        kept = {k: v for k, v in da.coords.items() if "epoch" not in v.dims}
        return xr.DataArray(res, dims=da.dims[:-1], coords=kept)
    values = np.asarray(loss, dtype=np.float64)
    return first_below(values, values[..., 0], threshold, np.arange(values.shape[-1]))


def functional_rank(trunc_loss: np.ndarray | xr.DataArray, threshold: float = 0.05) -> np.ndarray | xr.DataArray:
    """Smallest rank r with trunc_loss[r] < threshold * trunc_loss[rank 0]; -1 if none.

    A DataArray needs a ``rank`` dim holding rank 0; an array's last axis is ranks 0, 1, 2, ...
    """
    if isinstance(trunc_loss, xr.DataArray):
        da = trunc_loss.transpose(..., "rank")
        labels = da["rank"].values
        if 0 not in labels:
            raise UserInputError("functional rank needs the rank-0 loss as reference")
        ref = da.sel(rank=0).values
        res = first_below(da.values, ref, threshold, labels)
        kept = {k: v for k, v in da.coords.items() if "rank" not in v.dims}
        return xr.DataArray(res, dims=da.dims[:-1], coords=kept)
    values = np.asarray(trunc_loss, dtype=np.float64)
    return first_below(values, values[..., 0], threshold, np.arange(values.shape[-1]))
