"""The activity the regime analyses measure: what the output reads (the rates phi(x), or the
state x with ``readout_from = "state"``) of the members on evaluation trials, after an initial
transient, as float64 (E, S, N) sample matrices (docs/regimes.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from randstruct.analysis.evaluation import eval_batch
from randstruct.errors import UserInputError
from randstruct.tasks import Batch


WHAT = "what the output reads, rates phi(x[1..K]) or states x[1..K] (readout_from), after the grace time"


@dataclass
class Activity:
    """Samples (trial x step after the grace time) of each member: the activity the output reads x
    (E, S, N), outputs z (E, S, n_out), targets y and mask m (E, S, n_out); ``skip`` steps were
    dropped per trial."""

    x: torch.Tensor
    z: torch.Tensor
    y: torch.Tensor
    m: torch.Tensor
    skip: int


def grace_steps(task, grace: float) -> int:
    """Steps whose time (k + 1) dt is within the grace time; refused if none would be left."""
    skip = int(np.floor(grace / task.dt + 1e-9))
    if skip >= task.n_steps:
        raise UserInputError(f"grace time {grace:g} leaves no step of task {task.name!r} "
                             f"({task.n_steps} steps of dt = {task.dt:g}, duration {task.n_steps * task.dt:g}); "
                             "pass a smaller grace")
    return skip


def member_batches(ens, task, trials: int) -> list[Batch]:
    """Each member's fixed evaluation set (the stream of the connectivity analysis, eval_batch);
    a deterministic task needs one trial."""
    trials = int(trials) if task.stochastic else 1
    return [eval_batch(task, int(s), float(g), trials) for g, s in zip(ens.g, ens.seed)]


def shared_batches(ens, batch: Batch) -> list[Batch]:
    return [batch] * ens.size


def simulate(ens, task, batches: list[Batch], grace: float, noise: bool) -> Activity:
    """Activity and outputs of member e on ``batches[e]`` (noiseless unless ``noise``: then with the
    networks' training noise, one draw per member, ``member_rng(seed, g, 'sim_noise', 0)``)."""
    skip = grace_steps(task, grace)
    inputs = np.stack([b.inputs for b in batches])
    seed = 0 if noise and ens.options.noisy else None
    state = ens.options.readout_from == "state"
    z, x = ens.simulate(inputs, task.dt, return_rates=not state, return_states=state, noise_seed=seed)

    def samples(a) -> torch.Tensor:
        a = torch.as_tensor(a)[:, :, skip:].to(torch.float64).cpu()
        return a.reshape(a.shape[0], -1, a.shape[-1])

    return Activity(samples(x), samples(z), samples(np.stack([b.targets for b in batches])),
                    samples(np.stack([b.mask for b in batches])), skip)


def initial_network(ens, data):
    """The members at initialization: W0, W_in and W_out as drawn (the store keeps them), with the
    bias and initial state of ``ens`` (the trained ones where they were trained)."""
    dtype, device = ens.dtype, ens.device
    t = lambda name: torch.as_tensor(data[name].values, dtype=dtype, device=device)  # noqa: E731
    return ens.replace(wrec=ens.w0.clone(), wi=t("wi0"), wo=t("wo0"))
