"""The tasks of Schuessler et al. 2024 ("Aligned and oblique dynamics in recurrent neural
networks"; docs/tasks.md): cycling, the 3-bit flip-flop, Mante, Romo and complex sine, with the
timings of the authors' task generators and the settings of their "neuro" experiments (dt = 0.2,
targets of amplitude 1, the mask scored only every ``mask_step`` steps). Named apart from the 2020
tasks, whose timings differ."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar

import numpy as np

from randstruct.errors import UserInputError
from randstruct.tasks.base import F32, Batch, Task, as_generator, check_batch_size, steps, unpack_variates
from randstruct.tasks.cognitive import Mante


def _mask_step(task: Task) -> int:
    value = task.mask_step
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise UserInputError(f"mask_step must be an integer >= 1, got {value!r}")
    object.__setattr__(task, "mask_step", int(value))
    return int(value)


def every(mask: np.ndarray, step: int) -> np.ndarray:
    """``mask`` (B, K, C) scored only at steps k = 0, step, 2 step, ... (the 2024 code's mask_step_dt)."""
    mask[:, np.arange(mask.shape[1]) % step != 0] = 0
    return mask


def _before(name: str, value: float, limit_name: str, limit: float) -> None:
    if value > limit:
        raise UserInputError(f"{name} must be <= {limit_name} = {limit:g}, got {value!r}")


@dataclass(frozen=True)
class Cycling(Task):
    """Cycling after Russo et al. 2018: a context pulse on input 0 or 1 picks the direction in
    which the two outputs then trace a circle, (sin(+-2 pi f t), cos(2 pi f t)).

    dt: Euler step (tau); t_fix: quiet start (tau); t_stim: context pulse (tau), from t_fix;
    t_delay: from pulse onset to the circle (tau); t_dec: duration of the circle (tau), scored;
    freq: cycles per tau; input_amp, target_amp: amplitudes; mask_step: score every this many steps.
    K = steps(t_fix + t_delay + t_dec, dt). Variates: direction (batch,) 0 or 1, a random order of
    half the trials each way (the first one extra for an odd batch).
    """

    name: ClassVar[str] = "cycling"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 2
    stochastic: ClassVar[bool] = True

    dt: float = 0.2
    t_fix: float = 0.0
    t_stim: float = 1.0
    t_delay: float = 1.0
    t_dec: float = 71.0
    freq: float = 0.1
    input_amp: float = 1.0
    target_amp: float = 1.0
    mask_step: int = 5

    def __post_init__(self) -> None:
        dt = self._dt()
        for name in ("t_fix", "t_delay"):
            self._number(name, low=0)
        for name in ("t_stim", "t_dec", "freq"):
            self._number(name, low=0, strict=True)
        self._number("input_amp")
        self._number("target_amp")
        _mask_step(self)
        n_fix, n_stim = steps(self.t_fix, dt), self._one_step_at_least("t_stim")
        begin = n_fix + steps(self.t_delay, dt)
        n_steps = steps(self.t_fix + self.t_delay + self.t_dec, dt)
        _before("t_stim", self.t_stim, "t_delay + t_dec", self.t_delay + self.t_dec)  # the pulse ends by K
        self._set(_n_steps=n_steps, _stim=(n_fix, n_fix + n_stim),
                  _dec=(begin, begin + self._one_step_at_least("t_dec")))

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = check_batch_size(batch)
        return {"direction": rng.permutation(np.arange(n) % 2)}

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        (direction,) = unpack_variates(variates, {"direction": ()})
        n, k = len(direction), self._n_steps
        (s0, s1), (d0, d1) = self._stim, self._dec
        inputs = np.zeros((n, k, 2), dtype=F32)
        inputs[np.arange(n), s0:s1, direction] = self.input_amp
        phase = 2 * np.pi * self.freq * self.dt * np.arange(d1 - d0)
        sign = np.where(direction == 0, 1.0, -1.0)[:, None]
        targets = np.zeros((n, k, 2), dtype=F32)
        targets[:, d0:d1, 0] = np.sin(sign * phase) * self.target_amp
        targets[:, d0:d1, 1] = np.cos(phase) * self.target_amp
        mask = np.zeros((n, k, 2), dtype=F32)
        mask[:, d0:d1] = 1
        return self._batch(inputs, targets, every(mask, self.mask_step), {"direction": direction})

    def test_batch(self, batch: int = 1, rng: np.random.Generator | int | None = None) -> Batch:
        """Trials alternate directions 0, 1, 0, ... (deterministic; ``rng`` unused)."""
        return self.build({"direction": np.arange(check_batch_size(batch)) % 2})


@dataclass(frozen=True)
class FlipFlop3(Task):
    """The 2024 flip-flop: 3 channels; a pulse of sign s on input c sets output c to s after a
    grace period, and every other output holds its value (the 2020 task resets them).

    dt: Euler step (tau); T: trial length (tau); t_fix_min, t_fix_max: uniform quiet start (tau);
    t_stim: pulse duration (tau); t_delay: unscored grace period of the pulsed channel (tau);
    t_sd_min, t_sd_max: uniform stimulus delay (tau): the onset spacing is it plus t_delay, except
    that the first three pulses, one per channel in a random order, come dt + t_delay apart;
    input_amp, target_amp: amplitudes; mask_step: score every this many steps.
    An output is unscored until its channel's first pulse is past its grace period. Pulses
    continue while their onset is <= K = steps(T, dt). Variates: t_fix (batch,), t_sd, channels,
    signs (batch, n_slots); the first three channels are a permutation.
    """

    name: ClassVar[str] = "flipflop3_2024"
    n_in: ClassVar[int] = 3
    n_out: ClassVar[int] = 3
    stochastic: ClassVar[bool] = True

    dt: float = 0.2
    T: float = 25.0
    t_fix_min: float = 0.0
    t_fix_max: float = 1.0
    t_stim: float = 1.0
    t_delay: float = 2.0
    t_sd_min: float = 3.0
    t_sd_max: float = 10.0
    input_amp: float = 1.0
    target_amp: float = 1.0
    mask_step: int = 5

    def __post_init__(self) -> None:
        dt = self._dt()
        self._number("T", low=0, strict=True)
        self._number("t_stim", low=0, strict=True)
        for name in ("t_fix_min", "t_fix_max", "t_delay", "t_sd_min", "t_sd_max"):
            self._number(name, low=0)
        self._number("input_amp")
        self._number("target_amp")
        _mask_step(self)
        _before("t_fix_min", self.t_fix_min, "t_fix_max", self.t_fix_max)
        _before("t_sd_min", self.t_sd_min, "t_sd_max", self.t_sd_max)
        n_steps, n_stim = steps(self.T, dt), self._one_step_at_least("t_stim")
        first, shortest = steps(dt + self.t_delay, dt), steps(self.t_sd_min + self.t_delay, dt)
        if n_stim > min(first, shortest):
            raise UserInputError(f"t_stim must fit between onsets (<= dt + t_delay = {dt + self.t_delay:g} and "
                                 f"<= t_sd_min + t_delay = {self.t_sd_min + self.t_delay:g}), got {self.t_stim!r}")
        self._set(_n_steps=n_steps, _n_stim=n_stim, _n_delay=steps(self.t_delay, dt), _first=first,
                  _n_slots=self.n_in + max(0, n_steps - (self.n_in - 1) * first) // max(shortest, 1) + 1)

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = check_batch_size(batch)
        shape = (n, self._n_slots)
        t_fix = rng.uniform(self.t_fix_min, self.t_fix_max, n)
        t_sd = rng.uniform(self.t_sd_min, self.t_sd_max, shape)
        channels = rng.integers(0, self.n_in, shape)
        channels[:, :self.n_in] = rng.permuted(np.tile(np.arange(self.n_in), (n, 1)), axis=1)
        return {"t_fix": t_fix, "t_sd": t_sd, "channels": channels, "signs": 2 * rng.integers(0, 2, shape) - 1}

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        slots = (self._n_slots,)
        t_fix, t_sd, channels, signs = unpack_variates(
            variates, {"t_fix": (), "t_sd": slots, "channels": slots, "signs": slots})
        n, k_max, c = len(t_fix), self._n_steps, self.n_in
        spacing = steps(t_sd + self.t_delay, self.dt)
        spacing[:, :c - 1] = self._first
        onsets = steps(t_fix, self.dt)[:, None] + np.cumsum(spacing, axis=1) - spacing
        valid = onsets <= k_max
        # the latest pulse of each channel at each step: its slot index written at its onset, carried forward
        latest = np.full((n, k_max + 1, c), -1, dtype=np.int64)
        rows, slot = np.nonzero(valid)
        latest[rows, onsets[rows, slot], channels[rows, slot]] = slot
        latest = np.maximum.accumulate(latest, axis=1)[:, :k_max]
        seen = latest >= 0
        j = np.maximum(latest, 0)
        since = np.arange(k_max)[None, :, None] - np.take_along_axis(onsets[:, None, :], j, axis=2)
        sign = np.take_along_axis(signs[:, None, :], j, axis=2).astype(F32)
        scored = seen & (since >= self._n_delay)
        inputs = sign * (seen & (since < self._n_stim)) * F32(self.input_amp)
        targets = sign * scored * F32(self.target_amp)
        meta = {"onsets": np.where(valid, onsets, -1), "channels": np.where(valid, channels, -1),
                "signs": np.where(valid, signs, 0), "n_pulses": valid.sum(axis=1)}
        return self._batch(inputs, targets, every(scored.astype(F32), self.mask_step), meta)


@dataclass(frozen=True)
class Mante2024(Mante):
    """The 2024 Mante task: the 2020 task's structure (SPEC 2.2) with the 2024 settings: dt = 0.2,
    target amplitude 1, and the mask scored every ``mask_step`` steps (fixation and stimulus
    segments masked, target 0; decision segment target sign of the relevant coherence)."""

    name: ClassVar[str] = "mante2024"

    dt: float = 0.2
    target_amp: float = 1.0
    mask_step: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        _mask_step(self)

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        batch = super().build(variates)
        every(batch.mask, self.mask_step)
        return batch


@dataclass(frozen=True)
class Romo2024(Task):
    """The 2024 Romo task: two pulses of amplitudes a1, a2 on one input after a random fixation and
    a random delay; after a further delay one output reports +target_amp if a1 > a2, else
    -target_amp. Only the decision window is scored.

    dt: Euler step (tau); t_fix_min, t_fix_max: uniform fixation (tau); t_stim: pulse duration
    (tau); t_sd_min, t_sd_max: uniform delay between the pulses (tau); t_delay: from the second
    pulse's end to the decision (tau); t_dec: decision window (tau); amp_min, amp_max: uniform
    amplitudes, redrawn jointly until |a1 - a2| >= min_diff; target_amp; mask_step: score every
    this many steps. K = steps(t_fix_max + 2 t_stim + t_sd_max + t_delay + t_dec, dt).
    Variates: t_fix, t_sd, a1, a2, each (batch,).
    """

    name: ClassVar[str] = "romo2024"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    stochastic: ClassVar[bool] = True

    dt: float = 0.2
    t_fix_min: float = 1.0
    t_fix_max: float = 3.0
    t_stim: float = 1.0
    t_sd_min: float = 2.0
    t_sd_max: float = 12.0
    t_delay: float = 4.0
    t_dec: float = 8.0
    amp_min: float = 0.5
    amp_max: float = 1.5
    min_diff: float = 0.2
    target_amp: float = 1.0
    mask_step: int = 5

    def __post_init__(self) -> None:
        dt = self._dt()
        for name in ("t_fix_min", "t_fix_max", "t_sd_min", "t_sd_max", "t_delay", "min_diff"):
            self._number(name, low=0)
        for name in ("t_stim", "t_dec"):
            self._number(name, low=0, strict=True)
        for name in ("amp_min", "amp_max", "target_amp"):
            self._number(name)
        _mask_step(self)
        _before("t_fix_min", self.t_fix_min, "t_fix_max", self.t_fix_max)
        _before("t_sd_min", self.t_sd_min, "t_sd_max", self.t_sd_max)
        if self.amp_min >= self.amp_max:
            raise UserInputError(f"amp_min must be < amp_max = {self.amp_max:g}, got {self.amp_min!r}")
        if self.min_diff >= self.amp_max - self.amp_min:
            raise UserInputError(f"min_diff must be < amp_max - amp_min = {self.amp_max - self.amp_min:g}, "
                                 f"got {self.min_diff!r}")
        total = self.t_fix_max + 2 * self.t_stim + self.t_sd_max + self.t_delay + self.t_dec
        self._set(_n_steps=steps(total, dt), _n_stim=self._one_step_at_least("t_stim"),
                  _n_delay=steps(self.t_delay, dt), _n_dec=self._one_step_at_least("t_dec"))

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = check_batch_size(batch)
        t_fix = rng.uniform(self.t_fix_min, self.t_fix_max, n)
        t_sd = rng.uniform(self.t_sd_min, self.t_sd_max, n)
        amps = rng.uniform(self.amp_min, self.amp_max, (n, 2))
        redraw = np.abs(amps[:, 0] - amps[:, 1]) < self.min_diff
        while redraw.any():
            amps[redraw] = rng.uniform(self.amp_min, self.amp_max, (int(redraw.sum()), 2))
            redraw = np.abs(amps[:, 0] - amps[:, 1]) < self.min_diff
        return {"t_fix": t_fix, "t_sd": t_sd, "a1": amps[:, 0], "a2": amps[:, 1]}

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        t_fix, t_sd, a1, a2 = unpack_variates(variates, {"t_fix": (), "t_sd": (), "a1": (), "a2": ()})
        k = np.arange(self._n_steps)
        first = steps(t_fix, self.dt)[:, None]
        second = first + self._n_stim + steps(t_sd, self.dt)[:, None]
        dec = second + self._n_stim + self._n_delay
        pulse1 = (k >= first) & (k < first + self._n_stim)
        pulse2 = (k >= second) & (k < second + self._n_stim)
        window = (k >= dec) & (k < dec + self._n_dec)
        inputs = (pulse1 * a1[:, None] + pulse2 * a2[:, None])[..., None]
        targets = (window * np.where(a1 > a2, self.target_amp, -self.target_amp)[:, None])[..., None]
        meta = {"a1": a1, "a2": a2, "first_onset": first[:, 0], "second_onset": second[:, 0]}
        return self._batch(inputs, targets, every(window[..., None].astype(F32), self.mask_step), meta)


@dataclass(frozen=True)
class ComplexSine(Task):
    """Complex sine: a constant input (x + input_offset) input_amp with x ~ U(0, 1) sets the
    frequency f = freq_min + (freq_max - freq_min) x of the target sin(2 pi f k dt) target_amp.

    dt: Euler step (tau); t_fix: unscored start (tau); t_dec: scored duration (tau);
    freq_min, freq_max: frequency range (cycles per tau); input_offset keeps the input away from
    zero; mask_step: score every this many steps (2 in the paper). K = steps(t_fix + t_dec, dt).
    Variates: x (batch,).
    """

    name: ClassVar[str] = "complex_sine"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 1
    stochastic: ClassVar[bool] = True

    dt: float = 0.2
    t_fix: float = 0.0
    t_dec: float = 50.0
    freq_min: float = 0.04
    freq_max: float = 0.2
    input_offset: float = 0.25
    input_amp: float = 1.0
    target_amp: float = 1.0
    mask_step: int = 2

    def __post_init__(self) -> None:
        dt = self._dt()
        self._number("t_fix", low=0)
        self._number("t_dec", low=0, strict=True)
        for name in ("freq_min", "freq_max"):
            self._number(name, low=0)
        for name in ("input_offset", "input_amp", "target_amp"):
            self._number(name)
        _mask_step(self)
        _before("freq_min", self.freq_min, "freq_max", self.freq_max)
        n_fix = steps(self.t_fix, dt)
        self._set(_n_steps=steps(self.t_fix + self.t_dec, dt),
                  _dec=(n_fix, n_fix + self._one_step_at_least("t_dec")))

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": rng.uniform(0.0, 1.0, check_batch_size(batch))}

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        (x,) = unpack_variates(variates, {"x": ()})
        n, k = len(x), self._n_steps
        freq = self.freq_min + (self.freq_max - self.freq_min) * x
        inputs = np.broadcast_to(((x + self.input_offset) * self.input_amp)[:, None, None], (n, k, 1))
        targets = (np.sin(2 * np.pi * freq[:, None] * self.dt * np.arange(k)) * self.target_amp)[..., None]
        mask = np.zeros((n, k, 1), dtype=F32)
        mask[:, self._dec[0]:self._dec[1]] = 1
        return self._batch(inputs, targets, every(mask, self.mask_step), {"x": x, "freq": freq})

    def test_batch(self, batch: int = 1, rng: np.random.Generator | int | None = None) -> Batch:
        """The first five trials span x = 0, 0.25, ..., 1 (the paper's test set); the rest is random."""
        variates = self.draw(batch, as_generator(rng))
        fixed = min(5, len(variates["x"]))
        variates["x"][:fixed] = np.linspace(0.0, 1.0, 5)[:fixed]
        return self.build(variates)
