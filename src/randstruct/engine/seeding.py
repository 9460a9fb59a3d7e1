"""Explicit, independent random streams per network and per purpose.

A network is identified by its gain ``g`` and its integer ``seed`` (the sample index). Every
random draw that concerns it (initial connectivity, input/output vectors, training batches,
evaluation batches, shuffles, sparsity masks, noise) comes from its own stream, derived from
(seed, g, purpose) with NumPy's SeedSequence. So a network gets the same draws whether it is trained alone or inside
any ensemble, and networks with the same seed but different g are independent draws, as in
the paper (SPEC 1.2: a fresh draw for every (sample, g) pair).
"""

from __future__ import annotations

import numpy as np

from randstruct.errors import UserInputError

STREAMS = {"w0": 0, "vectors": 1, "train": 2, "eval": 3, "shuffle": 4, "spectra": 5, "dynamics": 6,
           "mask": 7, "noise": 8, "sim_noise": 9, "alignment": 10, "similarity": 11}


def _g_key(g: float) -> int:
    # g enters the seed in micro-units so that 0.9 typed by a user and 0.3 * 3 agree.
    # a network given without g (Ensemble.from_arrays) gets a key no finite g >= 0 has
    return int(round(float(g) * 1_000_000)) if np.isfinite(g) else 2**62


def member_rng(seed: int, g: float, stream: str, *extra: int) -> np.random.Generator:
    """Generator for one network's ``stream`` (see ``STREAMS``); ``extra`` splits it further."""
    if stream not in STREAMS:
        raise UserInputError(f"unknown random stream {stream!r}; allowed: {', '.join(STREAMS)}")
    if seed < 0:
        raise UserInputError(f"seed must be >= 0, got {seed}")
    entropy = [int(seed), _g_key(g), STREAMS[stream], *map(int, extra)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
