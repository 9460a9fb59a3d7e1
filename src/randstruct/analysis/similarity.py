"""The ``similarity`` analysis plug-in: (net, net2) matrices of how different the members'
solutions are, in activity, in dW and in fixed points (docs/regimes.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from randstruct.analysis import activity, measures
from randstruct.analysis.base import Analysis
from randstruct.analysis.evaluation import check_count, check_flag, check_index, check_time, net_coords
from randstruct.engine.seeding import member_rng


@dataclass(frozen=True)
class SimilarityParams:
    """``trials`` drawn once from ``member_rng(trials_seed, 0, 'similarity')`` and given to every
    member; ``grace`` and ``eval_noise`` as for ``alignment``; ``k`` leading singular directions of dW."""

    trials: int = 32
    trials_seed: int = 0
    grace: float = 10.0
    eval_noise: bool = False
    k: int = 3

    def __post_init__(self) -> None:
        check_count(self.trials, "trials")
        check_count(self.k, "k")
        check_index(self.trials_seed, "trials_seed")
        check_time(self.grace, "grace")
        check_flag(self.eval_noise, "eval_noise")


class Similarity(Analysis):
    """Pairwise dissimilarity of the members' solutions."""

    name = "similarity"
    Params = SimilarityParams
    shardable = False  # pairwise over all members
    variables = {
        "sim_cka": "linear CKA of the two members' activity (what the output reads) on the same trials (after the grace time)",
        "sim_procrustes": "Procrustes angle arccos(||X^T Y||_* / (||X||_F ||Y||_F)) of the two members' "
                          "sample-centered activity (radians; 0 = the same up to a rotation of the units)",
        "sim_angle_left": "principal angles (radians, ascending) between the spans of the top k left singular "
                          "vectors of the two members' dW",
        "sim_angle_right": "as sim_angle_left for the right singular vectors",
        "sim_fp_stable_diff": "|difference| of the numbers of stable fixed points of W (NaN without stored dynamics)",
        "sim_fp_unstable_diff": "|difference| of the numbers of unstable fixed points of W (NaN without stored "
                                "dynamics)",
        "sim_mds": "2-D classical MDS embedding of the members from 1 - sim_cka",
    }

    def identity(self, params, task, data) -> dict:
        return {**super().identity(params, task, data),
                "shared_trials": "one set for every member, member_rng(trials_seed, 0, 'similarity')",
                "activity": activity.WHAT}

    def compute(self, ens, task, data, params: SimilarityParams) -> xr.Dataset:
        batch = task.sample(int(params.trials) if task.stochastic else 1,
                            member_rng(int(params.trials_seed), 0.0, "similarity"))
        act = activity.simulate(ens, task, activity.shared_batches(ens, batch), params.grace, params.eval_noise)
        cka, procrustes = measures.pairwise_cka_procrustes(act.x)
        k = min(params.k, ens.n)
        u, _, vh = torch.linalg.svd(ens.w.double().cpu() - ens.w0.double().cpu())
        left = measures.pairwise_principal_angles(u[..., :k])
        right = measures.pairwise_principal_angles(vh[:, :k].transpose(1, 2))
        stable, unstable = _fp_counts(data, ens.size)
        coords = {**net_coords(ens), "net2": np.arange(ens.size), "dw_angle": np.arange(1, k + 1),
                  "mds": [1, 2]}
        pair = ("net", "net2")
        return xr.Dataset({
            "sim_cka": (pair, cka.numpy()),
            "sim_procrustes": (pair, procrustes.numpy()),
            "sim_angle_left": (pair + ("dw_angle",), left.numpy()),
            "sim_angle_right": (pair + ("dw_angle",), right.numpy()),
            "sim_fp_stable_diff": (pair, np.abs(stable[:, None] - stable[None, :])),
            "sim_fp_unstable_diff": (pair, np.abs(unstable[:, None] - unstable[None, :])),
            "sim_mds": (("net", "mds"), measures.classical_mds(1 - cka).numpy()),
        }, coords=coords)


def _fp_counts(data: xr.Dataset, e: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable and unstable fixed-point counts of each member's own W, NaN where not stored."""
    if "fp_n_stable" not in data or "fp_count" not in data:
        return np.full(e, np.nan), np.full(e, np.nan)
    stable = data.fp_n_stable.sel(variant="w").values.astype(float)
    return stable, data.fp_count.sel(variant="w").values.astype(float) - stable
