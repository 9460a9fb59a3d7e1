"""Private noise of the networks (docs/model.md), drawn on the host from each member's own stream.

Per trial, in this order: the input noise sigma_in xi / sqrt(dt) (added to the inputs, K x N_in),
the initial-state noise sigma_x0 xi (N) and the state noise sqrt(dt) sigma_rec xi (K x N), each
only when its sigma is > 0. Made with the training batch (so worker processes, checkpoints and
shards treat it like the batch) and handed to the kernels in their layout (E, K, B, C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from randstruct.engine.options import ModelOptions


@dataclass(frozen=True)
class NoiseSource:
    options: ModelOptions
    dt: float
    n: int
    float32: bool = True  # draws in float32 for float32 networks (twice as fast), else float64

    def names(self) -> list[str]:
        """The noise arrays that follow the task's arrays in a batch."""
        return [name for name, on in (("x0_noise", self.options.noise_x0), ("rec_noise", self.options.noise_rec)) if on]

    def shapes(self, n_net: int, n_steps: int, batch: int) -> list[tuple[int, ...]]:
        sizes = {"x0_noise": 1, "rec_noise": n_steps}
        return [(n_net, sizes[name], batch, self.n) for name in self.names()]

    def fill(self, rngs, inputs: np.ndarray, out: list[np.ndarray]) -> None:
        """Add input noise to ``inputs`` (E, K, B, N_in) and write the other noise into ``out``
        (arrays of :meth:`shapes`), member e from ``rngs[e]``."""
        o, dtype = self.options, np.float32 if self.float32 else np.float64
        _, n_steps, batch, n_in = inputs.shape
        for e, rng in enumerate(rngs):
            def draw(shape, scale):
                return rng.standard_normal(shape, dtype=dtype) * dtype(scale)

            if o.noise_in:
                inputs[e] += draw((batch, n_steps, n_in), o.noise_in / np.sqrt(self.dt)).transpose(1, 0, 2)
            slots = iter(out)
            if o.noise_x0:
                next(slots)[e] = draw((1, batch, self.n), o.noise_x0)
            if o.noise_rec:
                next(slots)[e] = draw((batch, n_steps, self.n), np.sqrt(self.dt) * o.noise_rec).transpose(1, 0, 2)

    def make(self, rngs, inputs: np.ndarray) -> list[np.ndarray]:
        """:meth:`fill` into new arrays, returned."""
        out = [np.empty(s, np.float32 if self.float32 else np.float64)
               for s in self.shapes(len(rngs), inputs.shape[1], inputs.shape[2])]
        self.fill(rngs, inputs, out)
        return out
