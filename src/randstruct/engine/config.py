"""What defines a training protocol besides the networks and the task (SPEC 1.4)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from randstruct.engine import kernels
from randstruct.engine.model import PARAMS
from randstruct.errors import UserInputError

OPTIMIZERS = ("adam", "sgd")
LOSSES = tuple(kernels.LOSSES)
SV_METHODS = ("auto", "full", "subspace")
LR_RULES = {
    "over_n": "lr = lr0 / N (the paper's Adam convention; loss curves roughly N-independent)",
    "linear_gain": "lr = lr0 (1 - g^2)^2 (the paper's SGD convention for linear networks)",
    "constant": "lr = lr0",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run besides the networks and the task."""

    epochs: int
    batch_size: int = 32
    optimizer: str = "adam"
    lr_rule: str = "over_n"
    lr0: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    trainable: tuple[str, ...] = ("wi", "wrec", "wo")
    rec_step: int | None = None  # None: every epochs/200 epochs (at least 1), as the CLI
    sv_top: int | None = None
    sv_method: str = "auto"
    eig_top: int | None = None
    record_weights: bool = False
    loss: str = "mse"  # "cross_entropy" needs a task with labels (one class per step)
    # penalties, lambda times a mean of squares: of W, of W - W0, of the rates (docs/model.md)
    l2_w: float = 0.0
    l2_dw: float = 0.0
    l2_rates: float = 0.0

    def __post_init__(self) -> None:
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise UserInputError(f"epochs must be an integer >= 1, got {self.epochs}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise UserInputError(f"batch_size must be an integer >= 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise UserInputError(f"unknown optimizer {self.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
        if self.loss not in LOSSES:
            raise UserInputError(f"unknown loss {self.loss!r}; allowed: {', '.join(LOSSES)}")
        if self.lr_rule not in LR_RULES:
            raise UserInputError(f"unknown lr_rule {self.lr_rule!r}; allowed: {', '.join(LR_RULES)}")
        if not (math.isfinite(self.lr0) and self.lr0 > 0):
            raise UserInputError(f"lr0 must be a finite number > 0, got {self.lr0}")
        if not all(0 <= b < 1 for b in self.betas) or len(self.betas) != 2:
            raise UserInputError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not self.eps > 0:
            raise UserInputError(f"eps must be > 0, got {self.eps}")
        bad = [p for p in self.trainable if p not in PARAMS]
        if bad or not self.trainable:
            raise UserInputError(f"trainable must be a non-empty subset of {', '.join(PARAMS)}, "
                                 f"got {list(self.trainable)}")
        if self.rec_step is None:  # a full SVD of every member's dW each epoch is a cost nobody chose
            object.__setattr__(self, "rec_step", max(1, int(self.epochs) // 200))
        if int(self.rec_step) != self.rec_step or self.rec_step < 1:
            raise UserInputError(f"rec_step must be an integer >= 1, got {self.rec_step}")
        if self.sv_top is not None and self.sv_top < 1:
            raise UserInputError(f"sv_top must be >= 1 or None, got {self.sv_top}")
        if self.sv_method not in SV_METHODS:
            raise UserInputError(f"unknown sv_method {self.sv_method!r}; allowed: {', '.join(SV_METHODS)}")
        if self.sv_method == "subspace" and self.sv_top is None:
            raise UserInputError("sv_method 'subspace' needs sv_top (the number of singular values to track)")
        if self.eig_top is not None and self.eig_top < 1:
            raise UserInputError(f"eig_top must be >= 1 or None, got {self.eig_top}")
        for name in ("l2_w", "l2_dw", "l2_rates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UserInputError(f"{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "trainable", tuple(self.trainable))
        object.__setattr__(self, "betas", tuple(self.betas))

    @property
    def regularized(self) -> bool:
        return bool(self.l2_w or self.l2_dw or self.l2_rates)

    def uses_subspace(self, n: int) -> bool:
        """"auto" tracks the top singular values by subspace iteration when few of many are kept."""
        if self.sv_method == "auto":
            return self.sv_top is not None and 8 * self.sv_top <= n
        return self.sv_method == "subspace"

    @property
    def rec_epochs(self) -> np.ndarray:
        """Epochs at which dW is recorded, before that epoch's update (SPEC 1.4)."""
        return np.arange(0, self.epochs, self.rec_step)

    def learning_rates(self, n: int, g: np.ndarray) -> np.ndarray:
        g = np.asarray(g, dtype=float)
        if self.lr_rule == "over_n":
            return np.full(g.shape, self.lr0 / n)
        if self.lr_rule == "linear_gain":
            if not np.all(np.isfinite(g)):
                raise UserInputError("lr_rule 'linear_gain' needs every network's g, got NaN "
                                     "(Ensemble.from_arrays without g); pass g or choose another lr_rule")
            if np.any(np.isclose(g, 1.0)):
                raise UserInputError(f"lr_rule 'linear_gain' gives lr = lr0 (1 - g^2)^2 = 0 at g = 1 (g = "
                                     f"{g.tolist()}): those networks would not learn; drop g = 1 or choose another "
                                     "lr_rule")
            return self.lr0 * (1.0 - g**2) ** 2
        return np.full(g.shape, self.lr0)

    def to_dict(self) -> dict:
        return asdict(self)
