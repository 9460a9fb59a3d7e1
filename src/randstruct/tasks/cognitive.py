"""The paper's cognitive tasks: flip-flop, context-dependent integration (Mante), parametric working
memory (Romo); SPEC 2.1-2.3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import ClassVar

import numpy as np

from randstruct.errors import UserInputError
from randstruct.tasks.base import F32, Batch, Task, as_generator, check_batch_size, onehot, steps, unpack_variates


@dataclass(frozen=True)
class FlipFlop(Task):
    """Flip-flop, "last pulse wins" (SPEC 2.1): 2 inputs, 2 outputs, no fixation mask.

    dt: Euler step (tau), in (0, 1].
    T: trial length (tau); K = steps(T, dt) (Fig 1a used T = 100).
    t_fix: input-free, unmasked start before the first pulse (tau).
    t_stim: pulse duration (tau).
    t_delay: unmasked decision delay after each pulse onset (tau).
    t_sd_min: lower bound of the uniform stimulus delay (tau); onset spacing = stimulus delay + t_delay.
    t_sd_max: upper bound of the uniform stimulus delay (tau).
    input_amp: pulse amplitude.
    target_amp: output amplitude after a pulse.
    Pulses continue while their onset is <= K (windows clipped at K), so an onset at exactly K is
    counted in ``meta['n_pulses']`` without touching the arrays.
    Variates: t_sd (stimulus delays), channels (0/1), signs (+-1), each (batch, n_slots); n_slots,
    the most pulses a trial can hold, depends only on the parameters, so draws concatenate.
    """

    name: ClassVar[str] = "flipflop"
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 2
    stochastic: ClassVar[bool] = True
    TEST_T_SD: ClassVar[tuple[float, ...]] = (16.55, 9.35, 14.80, 11.73, 12.17, 6.50, 13.06, 19.08, 13.19)
    TEST_CHANNELS: ClassVar[tuple[int, ...]] = (0, 0, 0, 1, 0, 1, 1, 0, 1)
    TEST_SIGNS: ClassVar[tuple[int, ...]] = (-1, 1, 1, 1, -1, -1, -1, -1, 1)
    _LEVELS: ClassVar[np.ndarray] = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=F32)

    dt: float = 0.5
    T: float = 50.0
    t_fix: float = 1.0
    t_stim: float = 1.0
    t_delay: float = 5.0
    t_sd_min: float = 5.0
    t_sd_max: float = 25.0
    input_amp: float = 1.0
    target_amp: float = 0.5

    def __post_init__(self) -> None:
        dt = self._dt()
        self._number("T", low=0, strict=True)
        self._number("t_stim", low=0, strict=True)
        for name in ("t_fix", "t_delay", "t_sd_min", "t_sd_max"):
            self._number(name, low=0)
        self._number("input_amp")
        self._number("target_amp")
        if self.t_sd_min > self.t_sd_max:
            raise UserInputError(f"t_sd_min must be <= t_sd_max = {self.t_sd_max:g}, got {self.t_sd_min!r}")
        n_steps, n_fix, n_stim = steps(self.T, dt), steps(self.t_fix, dt), self._one_step_at_least("t_stim")
        shortest = self.t_sd_min + self.t_delay
        min_spacing = steps(shortest, dt)
        if n_stim > min_spacing:
            limit = f"<= t_sd_min + t_delay = {shortest:g}"
            raise UserInputError(f"t_stim must fit between onsets ({limit}), got {self.t_stim!r}")
        if n_fix + n_stim > n_steps:
            raise UserInputError(f"T must leave room for one pulse after fixation (>= t_fix + t_stim), got {self.T!r}")
        self._set(
            _n_steps=n_steps,
            _n_fix=n_fix,
            _n_stim=n_stim,
            _n_delay=steps(self.t_delay, dt),
            _n_slots=(n_steps - n_fix) // min_spacing + 1,
        )

    @property
    def n_slots(self) -> int:
        """Most pulses a trial can hold (onsets <= K at the shortest spacing)."""
        return self._n_slots

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shape = (check_batch_size(batch), self._n_slots)
        return {
            "t_sd": rng.uniform(self.t_sd_min, self.t_sd_max, shape),
            "channels": rng.integers(0, 2, shape),
            "signs": 2 * rng.integers(0, 2, shape) - 1,
        }

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        slots = (self._n_slots,)
        t_sd, channels, signs = unpack_variates(variates, {"t_sd": slots, "channels": slots, "signs": slots})
        n, k_max = t_sd.shape[0], self._n_steps
        spacing = steps(t_sd + self.t_delay, self.dt)
        onsets = self._n_fix + np.cumsum(spacing, axis=1) - spacing
        valid = onsets <= k_max
        # Per-step level and onset are piecewise constant: running sums of their jumps at the onsets
        # (clipped onsets land in the extra column K, which is dropped).
        rows, at = np.arange(n)[:, None], np.minimum(onsets, k_max)
        jumps = np.zeros((n, k_max + 1, 2), dtype=F32)
        jumps[rows, at] = np.diff(self._LEVELS[2 * channels + (signs > 0)], axis=1, prepend=0)
        level = np.cumsum(jumps[:, :k_max], axis=1)
        shifts = np.zeros((n, k_max + 1), dtype=np.int64)
        shifts[rows, at] = np.diff(onsets, axis=1, prepend=0)
        k = np.arange(k_max)
        since = k - np.cumsum(shifts[:, :k_max], axis=1)
        window = (since >= self._n_delay) & (k >= self._n_fix)
        inputs = level * (F32(self.input_amp) * (since < self._n_stim))[..., None]
        targets = level * (F32(self.target_amp) * window)[..., None]
        meta = {
            "onsets": np.where(valid, onsets, -1),
            "channels": np.where(valid, channels, -1),
            "signs": np.where(valid, signs, 0),
            "n_pulses": valid.sum(axis=1),
        }
        return self._batch(inputs, targets, np.repeat(window[..., None], 2, axis=2), meta)

    def test_batch(self, batch: int = 1, rng: np.random.Generator | int | None = None) -> Batch:
        """Trial 0 starts with the paper's nine fixed pulses (Fig 1a); the rest is random, so ``rng`` is required."""
        variates = self.draw(batch, as_generator(rng))
        n = min(len(self.TEST_T_SD), self._n_slots)
        variates["t_sd"][0, :n] = self.TEST_T_SD[:n]
        variates["channels"][0, :n] = self.TEST_CHANNELS[:n]
        variates["signs"][0, :n] = self.TEST_SIGNS[:n]
        return self.build(variates)


@dataclass(frozen=True)
class Mante(Task):
    """Context-dependent integration (SPEC 2.2): inputs = context (columns 0-1), sensory (2-3); 1 output.

    dt: Euler step (tau), in (0, 1].
    t_fix: fixation segment (tau), target 0, masked if ``fixate``.
    t_stim: stimulus segment (tau): context cue and coherences on, target 0, masked if ``fixate``.
    t_delay: unmasked delay before the decision (tau).
    t_dec: decision segment (tau), target target_amp * sign(relevant coherence).
    coherences: positive coherence magnitudes; each sensory channel draws one of +-these uniformly.
    noise_std: sensory noise intensity; per-step std noise_std / sqrt(dt) at every step, both channels.
    input_amp: scale of the coherence signal (the noise is set by noise_std alone).
    context_amp: amplitude of the active context channel during the stimulus.
    target_amp: decision output amplitude.
    fixate: whether fixation and stimulus segments are masked (target 0).
    K = steps(t_fix + t_stim + t_delay + t_dec, dt); segment boundaries floor each duration.
    Variates: coherences (batch, 2), context (batch,), noise (batch, K, 2) float32, already scaled.
    """

    name: ClassVar[str] = "mante"
    n_in: ClassVar[int] = 4
    n_out: ClassVar[int] = 1
    stochastic: ClassVar[bool] = True
    TEST_COHERENCES: ClassVar[tuple[float, float]] = (1.0, -0.5)
    TEST_CONTEXT: ClassVar[int] = 1

    dt: float = 0.5
    t_fix: float = 3.0
    t_stim: float = 20.0
    t_delay: float = 5.0
    t_dec: float = 20.0
    coherences: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    noise_std: float = 0.05
    input_amp: float = 1.0
    context_amp: float = 1.0
    target_amp: float = 0.5
    fixate: bool = True

    def __post_init__(self) -> None:
        dt = self._dt()
        for name in ("t_fix", "t_delay", "noise_std"):
            self._number(name, low=0)
        for name in ("t_stim", "t_dec"):
            self._number(name, low=0, strict=True)
        for name in ("input_amp", "context_amp", "target_amp"):
            self._number(name)
        self._flag("fixate")
        coh = self.coherences
        if (
            not isinstance(coh, (Sequence, np.ndarray))
            or isinstance(coh, (str, bytes))
            or len(coh) == 0
            or not all(isinstance(c, Real) and not isinstance(c, bool) and np.isfinite(c) and c > 0 for c in coh)
        ):
            raise UserInputError(f"coherences must be a non-empty sequence of finite numbers > 0, got {coh!r}")
        object.__setattr__(self, "coherences", tuple(float(c) for c in coh))
        n_fix, n_stim = steps(self.t_fix, dt), self._one_step_at_least("t_stim")
        dec_start = n_fix + n_stim + steps(self.t_delay, dt)
        self._set(
            _n_steps=steps(self.t_fix + self.t_stim + self.t_delay + self.t_dec, dt),
            _stim=(n_fix, n_fix + n_stim),
            _dec=(dec_start, dec_start + self._one_step_at_least("t_dec")),
        )

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = check_batch_size(batch)
        magnitudes = np.asarray(self.coherences)
        noise = rng.standard_normal((n, self._n_steps, 2), dtype=F32)
        noise *= F32(self.noise_std / np.sqrt(self.dt))
        return {
            "coherences": rng.choice(np.concatenate([-magnitudes, magnitudes]), (n, 2)),
            "context": rng.integers(0, 2, n),
            "noise": noise,
        }

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        spec = {"coherences": (2,), "context": (), "noise": (self._n_steps, 2)}
        coherences, context, noise = unpack_variates(variates, spec)
        n = len(context)
        (s0, s1), (d0, d1) = self._stim, self._dec
        inputs = np.zeros((n, self._n_steps, 4), dtype=F32)
        inputs[:, :, 2:] = noise
        inputs[:, s0:s1, :2] = (onehot(context, 2) * self.context_amp)[:, None, :]
        inputs[:, s0:s1, 2:] += (coherences * self.input_amp)[:, None, :]
        targets = np.zeros((n, self._n_steps, 1), dtype=F32)
        targets[:, d0:d1, 0] = (self.target_amp * np.sign(coherences[np.arange(n), context]))[:, None]
        mask = np.zeros_like(targets)
        mask[:, d0:d1] = 1
        if self.fixate:
            mask[:, :s1] = 1
        return self._batch(inputs, targets, mask, {"coherences": coherences, "context": context})

    def test_batch(self, batch: int = 1, rng: np.random.Generator | int | None = None) -> Batch:
        """Trial 0 has coherences (1.0, -0.5) and context 1 (target -target_amp); noise stays random."""
        variates = self.draw(batch, as_generator(rng))
        variates["coherences"][0] = self.TEST_COHERENCES
        variates["context"][0] = self.TEST_CONTEXT
        return self.build(variates)


@dataclass(frozen=True)
class Romo(Task):
    """Parametric working memory (SPEC 2.3): 1 input, 2 outputs; which of two pulses was larger.

    dt: Euler step (tau), in (0, 1].
    t_fix: fixation before the first pulse (tau), masked if ``fixate``.
    t_stim: duration of each pulse (tau).
    t_sd_min: lower bound of the uniform delay between the pulses (tau).
    t_sd_max: upper bound of that delay (tau); also sets the trial length.
    t_delay: unmasked decision delay after the second pulse (tau).
    t_dec: decision window (tau): output argmax(a1, a2) = target_amp, the other 0, both masked.
    amp_min: lower bound of the uniform pulse amplitudes.
    amp_max: upper bound of the uniform pulse amplitudes.
    min_diff: amplitudes are redrawn jointly until |a1 - a2| >= min_diff.
    target_amp: decision output amplitude.
    fixate: whether everything before the end of the second pulse is masked (target 0).
    T = t_fix + 2 t_stim + t_sd_max + t_delay + t_dec (28 by default, SPEC 10.4), K = steps(T, dt);
    steps after the decision window are unmasked.
    Variates: a1, a2 (amplitudes), t_sd (delay between the pulses, tau), each (batch,).
    """

    name: ClassVar[str] = "romo"
    n_in: ClassVar[int] = 1
    n_out: ClassVar[int] = 2
    stochastic: ClassVar[bool] = True
    TEST_AMPLITUDES: ClassVar[tuple[float, float]] = (0.6, 1.1)
    TEST_T_SD: ClassVar[float] = 5.0

    dt: float = 0.5
    t_fix: float = 3.0
    t_stim: float = 1.0
    t_sd_min: float = 2.0
    t_sd_max: float = 8.0
    t_delay: float = 5.0
    t_dec: float = 10.0
    amp_min: float = 0.5
    amp_max: float = 1.5
    min_diff: float = 0.2
    target_amp: float = 0.5
    fixate: bool = True

    def __post_init__(self) -> None:
        dt = self._dt()
        for name in ("t_fix", "t_sd_min", "t_sd_max", "t_delay", "min_diff"):
            self._number(name, low=0)
        for name in ("t_stim", "t_dec"):
            self._number(name, low=0, strict=True)
        for name in ("amp_min", "amp_max", "target_amp"):
            self._number(name)
        self._flag("fixate")
        if self.t_sd_min > self.t_sd_max:
            raise UserInputError(f"t_sd_min must be <= t_sd_max = {self.t_sd_max:g}, got {self.t_sd_min!r}")
        if self.amp_min >= self.amp_max:
            raise UserInputError(f"amp_min must be < amp_max = {self.amp_max:g}, got {self.amp_min!r}")
        width = self.amp_max - self.amp_min
        if self.min_diff >= width:
            raise UserInputError(f"min_diff must be < amp_max - amp_min = {width:g}, got {self.min_diff!r}")
        self._set(
            _n_steps=steps(self.t_fix + 2 * self.t_stim + self.t_sd_max + self.t_delay + self.t_dec, dt),
            _n_fix=steps(self.t_fix, dt),
            _n_stim=self._one_step_at_least("t_stim"),
            _n_delay=steps(self.t_delay, dt),
            _n_dec=self._one_step_at_least("t_dec"),
        )

    def draw(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = check_batch_size(batch)
        amps = rng.uniform(self.amp_min, self.amp_max, (n, 2))
        redraw = np.abs(amps[:, 0] - amps[:, 1]) < self.min_diff
        while redraw.any():
            amps[redraw] = rng.uniform(self.amp_min, self.amp_max, (int(redraw.sum()), 2))
            redraw = np.abs(amps[:, 0] - amps[:, 1]) < self.min_diff
        return {"a1": amps[:, 0], "a2": amps[:, 1], "t_sd": rng.uniform(self.t_sd_min, self.t_sd_max, n)}

    def build(self, variates: Mapping[str, np.ndarray]) -> Batch:
        a1, a2, t_sd = unpack_variates(variates, {"a1": (), "a2": (), "t_sd": ()})
        k = np.arange(self._n_steps)
        delay = steps(t_sd, self.dt)
        first_end = self._n_fix + self._n_stim
        second = first_end + delay[:, None]
        dec = second + self._n_stim + self._n_delay
        pulse1 = (k >= self._n_fix) & (k < first_end)
        pulse2 = (k >= second) & (k < second + self._n_stim)
        window = ((k >= dec) & (k < dec + self._n_dec))[..., None]
        inputs = (pulse1 * a1[:, None] + pulse2 * a2[:, None])[..., None]
        targets = window * onehot((a2 > a1).astype(np.int64), 2)[:, None, :] * self.target_amp
        mask = window | (self.fixate & (k < second + self._n_stim))[..., None]
        meta = {"a1": a1, "a2": a2, "delay_steps": delay}
        return self._batch(inputs, targets, np.repeat(mask, 2, axis=2), meta)

    def test_batch(self, batch: int = 1, rng: np.random.Generator | int | None = None) -> Batch:
        """Every trial: delay steps(5, dt), amplitudes (0.6, 1.1) -> channel 1; deterministic, ``rng`` unused."""
        n = check_batch_size(batch)
        a1, a2 = self.TEST_AMPLITUDES
        return self.build({"a1": np.full(n, a1), "a2": np.full(n, a2), "t_sd": np.full(n, self.TEST_T_SD)})


