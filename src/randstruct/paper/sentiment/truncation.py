"""Low-rank truncation of the trained LSTM (SPEC 8.3) and singular values of every block.

The three 4N x N blocks (W_hh_l0, W_ih_l1, W_hh_l1; gates stacked, SVD of the whole stacked
matrix) are replaced simultaneously by either W0 + (rank-r part of dW) or the rank-r part of W;
every other parameter keeps its final value. Each block's SVDs are computed once; each rank then
costs one eval-mode pass over the validation set, done in a few large packed batches and
averaged per batch of 64 as in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from randstruct import store
from randstruct.analysis.connectivity import low_rank
from randstruct.errors import UserInputError
from randstruct.paper.sentiment import data as D
from randstruct.paper.sentiment.model import BLOCKS, TRUNCATED, SentimentLSTM
from randstruct.engine.device import check_device
from randstruct.paper.sentiment.train import KIND, batch_average, per_sentence

TRUNCATION_VARS = ("trunc_dw_acc", "trunc_dw_loss", "trunc_w_acc", "trunc_w_loss")


def rank_grid(n: int, step: int = 1, dense: int = 0) -> np.ndarray:
    """Ranks 0, step, 2 step, ..., every rank up to ``dense`` (where the curves change fastest),
    and always the full rank N (which recovers the final network)."""
    if int(step) != step or step < 1:
        raise UserInputError(f"rank step must be an integer >= 1, got {step}")
    if int(dense) != dense or dense < 0:
        raise UserInputError(f"dense ranks must be an integer >= 0, got {dense}")
    return np.unique(np.concatenate([np.arange(0, n + 1, step), np.arange(0, min(dense, n) + 1), [n]]))


class LowRank:
    """SVD of a matrix, kept in float64, giving its best rank-r approximations."""

    def __init__(self, matrix: torch.Tensor) -> None:
        self.u, self.s, self.vh = torch.linalg.svd(matrix.double()[None], full_matrices=False)

    def rank(self, r: int) -> torch.Tensor:
        return low_rank(self.u, self.s, self.vh, torch.tensor([r]))[0]


def model_from_results(ds: xr.Dataset, stage: str = "final", device: str = "cpu") -> SentimentLSTM:
    """The stored network (``stage`` "initial" or "final") in eval mode."""
    model = SentimentLSTM(ds.embedding.values, int(ds.attrs["N"]))
    model.set_blocks({name: ds[f"{stage}_{name}"].values for name in BLOCKS})
    return model.to(device).eval()


def validation_split(ds: xr.Dataset) -> D.Encoded:
    return D.Encoded(ds.val_tokens.values.astype(np.int64), ds.val_lengths.values.astype(np.int64),
                     ds.val_labels.values.astype(np.float32))


def singular_values(ds: xr.Dataset) -> dict[str, xr.Variable]:
    """SVs of W0, W and dW for the four weight matrices of the LSTM layers (Figs 5a, S6c-f)."""
    out = {}
    for name in ("w_ih_l0", "w_hh_l0", "w_ih_l1", "w_hh_l1"):
        w0 = torch.as_tensor(ds[f"initial_{name}"].values, dtype=torch.float64)
        w = torch.as_tensor(ds[f"final_{name}"].values, dtype=torch.float64)
        dim = "sv_in" if name == "w_ih_l0" else "sv"
        for label, matrix in (("initial", w0), ("final", w), ("delta", w - w0)):
            values = torch.linalg.svdvals(matrix).numpy()
            out[f"sv_{label}_{name}"] = xr.Variable(dim, values, attrs={
                "description": f"singular values of {dict(initial='W0', final='W', delta='dW = W - W0')[label]} "
                               f"of {name}, descending"})
    return out


@torch.no_grad()
def truncation_curves(ds: xr.Dataset, ranks: np.ndarray, device: str = "cpu",
                      progress: bool = False) -> dict[str, xr.Variable]:
    """Validation loss/accuracy for every rank, truncating dW and truncating W (SPEC 8.3)."""
    model = model_from_results(ds, "final", device)
    split = validation_split(ds)
    batches = D.evaluation_batches(split.lengths, int(ds.attrs["batch_size"]))
    pad = int(ds.attrs["pad_index"])
    w0 = {b: torch.as_tensor(ds[f"initial_{b}"].values) for b in TRUNCATED}
    w = {b: torch.as_tensor(ds[f"final_{b}"].values) for b in TRUNCATED}
    svd_dw = {b: LowRank(w[b] - w0[b]) for b in TRUNCATED}
    svd_w = {b: LowRank(w[b]) for b in TRUNCATED}
    results = {k: np.empty(len(ranks)) for k in TRUNCATION_VARS}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * len(ranks), unit="eval", desc="truncation", dynamic_ncols=True)
    for i, r in enumerate(int(x) for x in ranks):
        for kind, blocks in (("dw", {b: w0[b].double() + svd_dw[b].rank(r) for b in TRUNCATED}),
                             ("w", {b: svd_w[b].rank(r) for b in TRUNCATED})):
            model.set_blocks(blocks)
            losses, correct = per_sentence(model, split, pad, device)
            results[f"trunc_{kind}_loss"][i] = batch_average(losses, batches)
            results[f"trunc_{kind}_acc"][i] = batch_average(correct, batches)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    what = {"dw": "W0 + rank-r part of dW", "w": "rank-r part of W"}
    return {name: xr.Variable("rank", results[name], attrs={
        "description": f"validation {'accuracy' if name.endswith('acc') else 'BCE'} (eval mode, batch-averaged) "
                       f"with W_hh_l0, W_ih_l1, W_hh_l1 all set to {what[name.split('_')[1]]}"})
        for name in TRUNCATION_VARS}


def analyze(run_dir: str | Path, rank_step: int = 1, device: str = "cpu", progress: bool = True,
            dense_ranks: int = 0) -> xr.Dataset:
    """Add singular values and truncation curves to a completed sentiment run; returns all results.

    Re-running replaces an earlier analysis (also one with another rank step).
    """
    run_dir = Path(run_dir)

    def sentiment_only(config: dict) -> None:
        if config.get("kind") != KIND:
            raise store.RunError(f"{run_dir} is not a sentiment run (its config.json has kind "
                                 f"{config.get('kind', 'none')!r}); train one with 'randstruct sentiment train'")

    store.read_config(run_dir, expect=sentiment_only)
    check_device(device)
    ds = store.open_results(run_dir)
    ranks = rank_grid(int(ds.attrs["N"]), rank_step, dense_ranks)
    new = {**singular_values(ds), **truncation_curves(ds, ranks, device, progress)}
    n_in = len(new["sv_final_w_ih_l0"].values)
    added = xr.Dataset(new).assign_coords(rank=ranks, sv=np.arange(1, int(ds.attrs["N"]) + 1),
                                          sv_in=np.arange(1, n_in + 1))
    added.attrs.update(rank_step=int(rank_step), dense_ranks=int(dense_ranks))
    with store.run_lock(run_dir, "analyze"):  # beside the results, as every analysis: training arrays untouched
        store.add_results(run_dir, added)
    return store.open_results(run_dir)
