"""Where the search starts and how its results are read: initial states from the networks' own
trajectories, the recurrent matrices of the three variants, and coordinates in dW's singular
vectors.

Variants (``VARIANTS``): "w" the trained W; "trunc" W0 + dW_r, the best rank-r approximation of
dW with r the network's functional rank (from ``randstruct analyze``); "shuffle" P(W0) + dW with
P the first full shuffle of the analysis (``member_rng(seed, g, "shuffle", SHUFFLE_CODES["full"],
0)``, the same matrix whose loss is ``shuffle_loss[shuffle=0]``).
"""

from __future__ import annotations

import numpy as np
import torch

from randstruct.analysis.connectivity import low_rank, svd64
from randstruct.analysis.evaluation import shuffle_plan
from randstruct.dynamics.jacobians import phi
from randstruct.engine import kernels
from randstruct.engine.batches import make_batch
from randstruct.engine.model import Ensemble
from randstruct.engine.seeding import member_rng
from randstruct.errors import UserInputError
from randstruct.tasks import Task

VARIANTS = ("w", "trunc", "shuffle")


def trajectories(ens: Ensemble, inputs: torch.Tensor, dt: float) -> torch.Tensor:
    """States x[0..K] (E, B, K+1, N) of the Euler dynamics (SPEC 1.1) on ``inputs`` (E, K, B, N_in).

    The search needs states, not rates (tanh^-1 of a rate rounded to 1 is infinite): the training
    kernels' forward pass keeps them when asked to read the output from the state.
    """
    e, k, b, _ = inputs.shape
    trace = kernels.forward(inputs, ens.wi, ens.w, ens.wo, ens.b, ens.x0, dt, ens.nonlinearity, readout_from="state")
    x0 = ens.x0[:, None, None, :].expand(e, 1, b, ens.n)
    return torch.cat([x0, trace.states], 1).transpose(1, 2)


def initial_states(ens: Ensemble, task: Task, inits: int, seed: int, trials: int = 32):
    """``inits`` states per member drawn uniformly from its trajectories on ``trials`` task trials.

    Member m's trials and picks come from ``member_rng(seed_m, g_m, "dynamics", seed)``. Returns
    (x_init (E, K, N), trajectories (E, B, T+1, N)).
    """
    if isinstance(inits, bool) or int(inits) != inits or inits < 1:
        raise UserInputError(f"inits must be an integer >= 1, got {inits}")
    rngs = [member_rng(int(s), float(g), "dynamics", int(seed)) for g, s in zip(ens.g, ens.seed)]
    n_trials = int(trials) if task.stochastic else 1
    u = torch.as_tensor(make_batch(task, rngs, n_trials)[0], dtype=ens.dtype, device=ens.device)
    traj = trajectories(ens, u, task.dt)
    flat = traj.reshape(ens.size, -1, ens.n)
    picks = np.stack([rng.integers(0, flat.shape[1], int(inits)) for rng in rngs])
    idx = torch.as_tensor(picks, device=ens.device)
    return flat.gather(1, idx[..., None].expand(-1, -1, ens.n)), traj


def variant_weights(ens: Ensemble, variant: str, ranks: np.ndarray | None = None) -> torch.Tensor:
    """Recurrent matrices (E, N, N) in float64 of one variant; "trunc" needs ``ranks`` (E,), and a
    member with rank < 0 (never reached the threshold) gets NaN weights (no search)."""
    if variant == "w":
        return ens.wrec.double()
    if variant == "shuffle":
        return shuffle_plan(ens, 1, "full").weights(slice(0, ens.size)).double()
    if variant != "trunc":
        raise UserInputError(f"unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    if ranks is None or len(ranks) != ens.size:
        raise UserInputError("the truncated variant needs one functional rank per network")
    w0 = ens.w0.double()
    u, s, vh = svd64(ens.wrec.double() - w0)
    r = torch.as_tensor(np.asarray(ranks), device=ens.device)
    out = w0 + low_rank(u, s, vh, r)
    out[r < 0] = float("nan")
    return out


def dw_directions(ens: Ensemble, n_dirs: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top ``n_dirs`` left (E, N, d) and right (E, N, d) singular vectors of the final dW, and its
    singular values (E, d). Signs as the SVD returns them (coordinates flip with them)."""
    u, s, vh = svd64(ens.wrec.double() - ens.w0.double())
    d = min(n_dirs, ens.n)
    return u[..., :d], vh[:, :d].transpose(1, 2), s[:, :d]


def coordinates(x: np.ndarray, u: torch.Tensor, v: torch.Tensor, nonlinearity: str):
    """Coordinates of states ``x`` (E, P, N): on dW's left vectors, U^T x (the subspace dW writes
    into), and on its right vectors, V^T phi(x) (what dW reads). NaN rows stay NaN."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    return (xt @ u.cpu()).numpy(), (phi(xt, nonlinearity) @ v.cpu()).numpy()


def readouts(x: np.ndarray, wo: torch.Tensor, nonlinearity: str, readout_from: str = "rates") -> np.ndarray:
    """z = W_out^T phi(x) (or W_out^T x for a readout from the state) of states ``x`` (E, P, N)
    -> (E, P, N_out)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    return ((xt if readout_from == "state" else phi(xt, nonlinearity)) @ wo.double().cpu()).numpy()
