"""What a command will need at its peak, checked against what the machine has before anything is
allocated or written: a run that cannot fit is a one-line :class:`~randstruct.errors.ResourceError`,
not minutes of swapping and a kill by the kernel.

The estimates are rough upper bounds of the few arrays that grow with the user's parameters; every
verb goes through :func:`require`.
"""

from __future__ import annotations

import torch

from randstruct.errors import ResourceError

GIB = 2**30


def available(device: str) -> int | None:
    """Free bytes on ``device`` (MemAvailable on a Linux host), or None where it cannot be told."""
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def require(need: int, device: str, what: str, advice: str) -> None:
    """Refuse ``what`` (e.g. "this run") when its ``need`` in bytes exceeds what ``device`` has free."""
    free = available(device)
    if free is not None and need > free:
        raise ResourceError(f"{what} needs about {need / GIB:.3g} GiB of memory on {device} but "
                            f"{free / GIB:.3g} GiB are free; {advice}")


def analysis_bytes(n_net: int, n: int, n_in: int, n_out: int, n_steps: int, labels: bool, item: int,
                   eval_trials: int, fixed: bool, ranks: int, shuffles: int, chunk_bytes: int) -> int:
    """``randstruct analyze``: the evaluation sets (held for every network under the fixed policy,
    made as float32, concatenated, then copied to the run's precision), one chunk of members, the
    SVDs and matrices of every network in float64, and the per-member bookkeeping of the 3 + 2
    (ranks + 1) + 3 shuffles members of every network."""
    per_trial = n_steps * (n_in + 2 * n_out + labels)
    per_member = item * (3 * n * n + eval_trials * (3 * n + n_in + 1) + 2 * per_trial * eval_trials)
    sets = n_net * eval_trials * per_trial * (8 + item) if fixed else 0
    members = n_net * (3 + 2 * (ranks + 1) + 3 * shuffles)
    return sets + max(chunk_bytes, per_member) + n_net * 12 * n * n * 8 + members * 40


def dynamics_bytes(n_net: int, n: int, n_states: int, n_steps: int, trials: int, item: int,
                   chunk_bytes: int) -> int:
    """``randstruct dynamics``: the fixed-point search of ``n_states`` states per network (about 24
    state vectors in float64 while a variant is searched, the three variants' results stacked), its
    Newton chunk, the trajectories the initial states are picked from, and the matrices."""
    search = n_net * n_states * (24 * n + 3 * (n + 40)) * 8
    trajectories = n_net * trials * (n_steps + 1) * n * (8 + item)
    return search + chunk_bytes + trajectories + n_net * 12 * n * n * 8
