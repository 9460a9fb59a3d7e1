"""The deterministic tasks of the linear-network experiments: the input-driven fixed point (Simple)
and autonomous cosine generation; SPEC 2.4-2.5."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from randstruct.errors import UserInputError
from randstruct.tasks.base import F32, Batch, DeterministicTask, steps, unpack_variates


@dataclass(frozen=True)
class Simple(DeterministicTask):
    """Input-driven fixed point (SPEC 2.4): 1 input, 1 output; deterministic, every batch identical.

    dt: Euler step (tau), in (0, 1].
    T: trial length (tau); K = steps(T, dt) (101 for Figs 3/4/S3, 201 for Fig S4).
    t_fix: initial input-free span (tau).
    t_dec: final span (tau) on which the output must equal ``target``; the only masked steps.
    input_amp: constant input after t_fix.
    target: target output z-hat.
    """

    name: ClassVar[str] = "simple"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1

    dt: float = 0.5
    T: float = 101.0
    t_fix: float = 1.0
    t_dec: float = 1.0
    input_amp: float = 1.0
    target: float = 0.5

    def __post_init__(self) -> None:
        dt = self._dt()
        self._number("T", low=0, strict=True)
        self._number("t_fix", low=0)
        self._number("t_dec", low=0, strict=True)
        self._number("input_amp")
        self._number("target")
        n_steps, n_fix = steps(self.T, dt), steps(self.t_fix, dt)
        if n_fix >= n_steps:
            raise UserInputError(f"t_fix must leave at least one input step (< T = {self.T:g}), got {self.t_fix!r}")
        n_dec = self._one_step_at_least("t_dec")
        if n_dec > n_steps:
            raise UserInputError(f"t_dec must be <= T = {self.T:g}, got {self.t_dec!r}")
        self._set(_n_steps=n_steps, _n_fix=n_fix, _n_dec=n_dec)

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        (trial,) = unpack_variates(variates, {"trial": ()})
        k = np.arange(self._n_steps)
        shape = (len(trial), self._n_steps, 1)
        inputs = np.broadcast_to(((k >= self._n_fix) * self.input_amp)[None, :, None], shape)
        window = np.broadcast_to((k >= self._n_steps - self._n_dec)[None, :, None], shape)
        return self._batch(inputs, window * self.target, window, {})


@dataclass(frozen=True)
class Cosine(DeterministicTask):
    """Autonomous cosine generation (SPEC 2.5): 1 (zero) input, 1 output; deterministic.

    dt: Euler step (tau), in (0, 1].
    T: trial length (tau); K = steps(T, dt).
    period: cosine period (tau); target target_amp * cos(2 pi k dt / period).
    n_periods: number of periods from t = 0 that are masked; later steps keep the target but are unmasked.
    target_amp: cosine amplitude.
    """

    name: ClassVar[str] = "cosine"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1

    dt: float = 0.1
    T: float = 20.0
    period: float = 5.0
    n_periods: float = 2.0
    target_amp: float = 1.0

    def __post_init__(self) -> None:
        dt = self._dt()
        for name in ("T", "period", "n_periods"):
            self._number(name, low=0, strict=True)
        self._number("target_amp")
        masked = self.n_periods * self.period
        n_steps, n_mask = steps(self.T, dt), steps(masked, dt)
        if n_mask < 1:
            raise UserInputError(f"n_periods * period must last at least one step (>= dt = {dt:g}), got {masked:g}")
        if n_mask > n_steps:
            raise UserInputError(f"n_periods * period must be <= T = {self.T:g}, got {masked:g}")
        self._set(_n_steps=n_steps, _n_mask=n_mask)

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        (trial,) = unpack_variates(variates, {"trial": ()})
        k = np.arange(self._n_steps)
        shape = (len(trial), self._n_steps, 1)
        target = self.target_amp * np.cos(2 * np.pi * k * self.dt / self.period)
        mask = np.broadcast_to((k < self._n_mask)[None, :, None], shape)
        return self._batch(np.zeros(shape, dtype=F32), np.broadcast_to(target[None, :, None], shape), mask, {})


