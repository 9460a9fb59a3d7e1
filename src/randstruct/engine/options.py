"""Options of the network model shared by every member of a run (docs/model.md): private noise,
readout size and what it reads, Dale's law and sparse connectivity. The defaults are the 2020
paper's network."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from randstruct.engine.kernels import READOUTS_FROM
from randstruct.errors import UserInputError

READOUTS = ("small", "large")


@dataclass(frozen=True)
class ModelOptions:
    """``noise_rec``, ``noise_x0``, ``noise_in``: continuous-time noise intensities (>= 0) on the
    state, the initial state and the inputs; ``readout``: "small" (output entries ~ 1/N) or
    "large" (unit-norm columns, entries ~ 1/sqrt(N)); ``readout_from``: "rates" (z = Wout^T phi(x),
    the 2020 paper) or "state" (z = Wout^T x, Schuessler et al. 2024); ``dale``: fraction of excitatory units in
    (0, 1), or None for unsigned weights; ``sparsity``: fraction of absent connections in [0, 1)."""

    noise_rec: float = 0.0
    noise_x0: float = 0.0
    noise_in: float = 0.0
    readout: str = "small"
    dale: float | None = None
    sparsity: float = 0.0
    readout_from: str = "rates"

    def __post_init__(self) -> None:
        for name in ("noise_rec", "noise_x0", "noise_in"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UserInputError(f"{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.readout not in READOUTS:
            raise UserInputError(f"unknown readout {self.readout!r}; allowed: {', '.join(READOUTS)}")
        if self.readout_from not in READOUTS_FROM:
            raise UserInputError(f"unknown readout_from {self.readout_from!r}; allowed: {', '.join(READOUTS_FROM)}")
        if self.dale is not None:
            if isinstance(self.dale, bool) or not (isinstance(self.dale, (int, float)) and 0 < self.dale < 1):
                raise UserInputError(f"dale (fraction of excitatory units) must be in (0, 1), got {self.dale!r}")
            object.__setattr__(self, "dale", float(self.dale))
        s = self.sparsity
        if isinstance(s, bool) or not (isinstance(s, (int, float)) and 0 <= s < 1):
            raise UserInputError(f"sparsity (fraction of absent connections) must be in [0, 1), got {s!r}")
        object.__setattr__(self, "sparsity", float(s))

    @property
    def noisy(self) -> bool:
        return bool(self.noise_rec or self.noise_x0 or self.noise_in)

    @property
    def constrained(self) -> bool:
        """Whether W is a function of the trained parameter (Dale signs or a sparsity mask)."""
        return self.dale is not None or self.sparsity > 0

    def to_dict(self) -> dict:
        return asdict(self)
