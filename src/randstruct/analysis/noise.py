"""The ``noise`` analysis plug-in: where the networks' own noise goes, along the output or not
(Schuessler et al. 2024: oblique networks suppress noise along the output directions;
docs/regimes.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from randstruct.analysis import activity
from randstruct.analysis.base import Analysis
from randstruct.analysis.evaluation import check_count, check_time, eval_batch, net_coords
from randstruct.errors import UserInputError
from randstruct.tasks import Batch


@dataclass(frozen=True)
class NoiseParams:
    """``conditions`` trials of each member's evaluation set, each run ``repeats`` times with the
    training noise (``member_rng(seed, g, 'sim_noise', 0)``); ``grace`` (tau) left out; ``n_pcs``
    leading components of the condition-averaged activity."""

    conditions: int = 4
    repeats: int = 16
    grace: float = 10.0
    n_pcs: int = 2

    def __post_init__(self) -> None:
        check_count(self.conditions, "conditions")
        check_count(self.n_pcs, "n_pcs")
        check_count(self.repeats, "repeats")
        if self.repeats < 2:
            raise UserInputError(f"repeats must be >= 2 (fluctuations around a mean), got {self.repeats}")
        check_time(self.grace, "grace")


class Noise(Analysis):
    """Variance of the noise-driven fluctuations along the readout, the leading components and
    a random direction."""

    name = "noise"
    Params = NoiseParams
    variables = {
        "noise_var_readout": "variance of the activity's trial-to-trial fluctuations (around the mean over the "
                             "repeats of a condition, after the grace time) per direction of the readout columns' "
                             "span: trace(Q^T C Q) / k for an orthonormal basis Q of the k columns",
        "noise_var_pc": "as noise_var_readout, in the span of the n_pcs leading principal components of the "
                        "condition-averaged activity",
        "noise_var_random": "the same variance along a uniformly random unit direction, in expectation: "
                            "trace(C) / N",
        "noise_compression": "noise_var_readout / noise_var_random (< 1: noise suppressed along the output)",
    }

    def identity(self, params, task, data) -> dict:
        return {**super().identity(params, task, data), "activity": activity.WHAT,
                "trials": "the first conditions trials of each member's evaluation set, member_rng(seed, g, 'eval')"}

    def compute(self, ens, task, data, params: NoiseParams) -> xr.Dataset:
        if not ens.options.noisy:
            raise UserInputError("the noise analysis needs a run trained with noise (noise_rec, noise_x0 or "
                                 "noise_in > 0); this run has none")
        c = int(params.conditions) if task.stochastic else 1
        r = int(params.repeats)
        batches = [_repeated(eval_batch(task, int(s), float(g), c), r) for g, s in zip(ens.g, ens.seed)]
        act = activity.simulate(ens, task, batches, params.grace, noise=True)
        e, n = ens.size, ens.n
        x = act.x.reshape(e, r, c, -1, n)  # trial b = repeat * c + condition
        mean = x.mean(1)
        dh = (x - mean[:, None]).reshape(e, -1, n)
        cov = dh.transpose(1, 2) @ dh / (dh.shape[1] - 1)
        wo = ens.wo.double().cpu()
        q = torch.linalg.qr(wo).Q
        m = mean.reshape(e, -1, n)
        vh = torch.linalg.svd(m - m.mean(1, keepdim=True), full_matrices=False).Vh
        p = vh[:, :min(params.n_pcs, vh.shape[1])].transpose(1, 2)

        def along(basis: torch.Tensor) -> torch.Tensor:
            return torch.einsum("eik,eij,ejk->e", basis, cov, basis) / basis.shape[-1]

        readout, rand = along(q), torch.diagonal(cov, dim1=1, dim2=2).sum(-1) / n
        return xr.Dataset({
            "noise_var_readout": ("net", readout.numpy()),
            "noise_var_pc": ("net", along(p).numpy()),
            "noise_var_random": ("net", rand.numpy()),
            "noise_compression": ("net", (readout / rand).numpy()),
        }, coords=net_coords(ens))


def _repeated(batch: Batch, repeats: int) -> Batch:
    """``batch`` tiled ``repeats`` times along the trials (trial b is condition b mod len(batch))."""
    tile = lambda a: np.concatenate([a] * repeats)  # noqa: E731
    return dataclasses.replace(batch, inputs=tile(batch.inputs), targets=tile(batch.targets), mask=tile(batch.mask),
                               meta={k: tile(v) for k, v in batch.meta.items()},
                               decision=None if batch.decision is None else tile(batch.decision))
