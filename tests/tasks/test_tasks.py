"""Tests of the task generators against the conventions of SPEC section 2."""

from __future__ import annotations

import inspect
import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from randstruct.tasks import (TASKS, Batch, ComplexSine, Cosine, Cycling, FlipFlop, FlipFlop3, Mante, Mante2024, Romo,
                              Romo2024, Simple, Task, get_task, steps)

NAMES = sorted(TASKS)
STOCHASTIC = ["flipflop", "mante", "romo", "cycling", "flipflop3_2024", "mante2024", "romo2024", "complex_sine"]
FAST = settings(max_examples=25, deadline=None)


def concat(*variates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([v[key] for v in variates]) for key in variates[0]}


def runs(active: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], active.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def assert_batches_equal(a: Batch, b: Batch) -> None:
    for field in ("inputs", "targets", "mask"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.meta.keys() == b.meta.keys()
    for key in a.meta:
        np.testing.assert_array_equal(a.meta[key], b.meta[key])


def flipflop_reference(task: FlipFlop, variates: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The SPEC 2.1 loop, trial by trial and pulse by pulse."""
    dt, n = task.dt, len(variates["t_sd"])
    k_max, n_stim, n_delay = steps(task.T, dt), steps(task.t_stim, dt), steps(task.t_delay, dt)
    inputs, targets, mask = (np.zeros((n, k_max, 2)) for _ in range(3))
    onsets = []
    for b in range(n):
        s, j, trial_onsets = steps(task.t_fix, dt), 0, []
        while s <= k_max:
            s_next = s + steps(variates["t_sd"][b, j] + task.t_delay, dt)
            c, sign = variates["channels"][b, j], variates["signs"][b, j]
            inputs[b, s : s + n_stim, c] = sign * task.input_amp
            targets[b, s + n_delay : s_next, c] = sign * task.target_amp
            targets[b, s + n_delay : s_next, 1 - c] = 0
            mask[b, s + n_delay : s_next, :] = 1
            trial_onsets.append(s)
            s, j = s_next, j + 1
        onsets.append(trial_onsets)
    return inputs, targets, mask, onsets


# ----------------------------------------------------------------------------- shared behaviour


def test_steps_floors_with_tolerance() -> None:
    assert steps(0.3, 0.1) == 3
    assert steps(1, 0.5) == 2
    assert steps(0.99, 0.5) == 1
    assert steps(28, 0.1) == 280
    assert isinstance(steps(50, 0.5), int)
    np.testing.assert_array_equal(steps(np.array([0.3, 0.45, 10.0]), 0.1), [3, 4, 100])


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_mask_values(name: str) -> None:
    task = get_task(name)
    batch = task.sample(7, 0)
    k = task.n_steps
    assert batch.inputs.shape == (7, k, task.n_in)
    assert batch.targets.shape == batch.mask.shape == (7, k, task.n_out)
    assert batch.inputs.dtype == batch.targets.dtype == batch.mask.dtype == np.float32
    assert set(np.unique(batch.mask)) <= {0.0, 1.0}
    assert batch.n_steps == k and batch.batch_size == 7 and batch.dt == task.dt
    assert all(value.shape[0] == 7 for value in batch.meta.values())
    assert np.isfinite(batch.inputs).all() and np.isfinite(batch.targets).all()


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("flipflop", {"onsets", "channels", "signs", "n_pulses"}),
        ("mante", {"coherences", "context"}),
        ("romo", {"a1", "a2", "delay_steps"}),
        ("simple", set()),
        ("cosine", set()),
    ],
)
def test_meta_keys(name: str, keys: set[str]) -> None:
    assert set(get_task(name).sample(3, 0).meta) == keys


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_batch_and_generator_equals_int_seed(name: str) -> None:
    task = get_task(name)
    assert_batches_equal(task.sample(16, 42), task.sample(16, 42))
    assert_batches_equal(task.sample(16, 42), task.sample(16, np.random.default_rng(42)))


@pytest.mark.parametrize("name", STOCHASTIC)
def test_different_seeds_differ(name: str) -> None:
    task = get_task(name)
    assert not np.array_equal(task.sample(16, 1).inputs, task.sample(16, 2).inputs)


@pytest.mark.parametrize("name", ["simple", "cosine"])
def test_deterministic_tasks_ignore_the_seed(name: str) -> None:
    task = get_task(name)
    assert not task.stochastic
    reference = task.sample(3, None)
    assert_batches_equal(reference, task.sample(3, 5))
    assert_batches_equal(reference, task.test_batch(3))
    np.testing.assert_array_equal(reference.inputs[0], reference.inputs[2])


@pytest.mark.parametrize("name", NAMES)
def test_concatenated_draws_build_like_separate_builds(name: str) -> None:
    """The ensemble invariant: per-member draws, concatenated, built once."""
    task = get_task(name)
    draws = [task.draw(n, np.random.default_rng(seed)) for n, seed in ((3, 10), (1, 11), (5, 12))]
    joint = task.build(concat(*draws))
    parts = [task.build(d) for d in draws]
    for field in ("inputs", "targets", "mask"):
        np.testing.assert_array_equal(getattr(joint, field), np.concatenate([getattr(p, field) for p in parts]))
    for key in joint.meta:
        np.testing.assert_array_equal(joint.meta[key], np.concatenate([p.meta[key] for p in parts]))
    assert joint.batch_size == 9


@pytest.mark.parametrize("name", STOCHASTIC)
def test_sample_is_build_of_draw_and_leaves_global_state_alone(name: str) -> None:
    task = get_task(name)
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    assert_batches_equal(task.sample(4, 3), task.build(task.draw(4, np.random.default_rng(3))))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("flipflop", {"T": 100, "dt": 0.25}),
        ("mante", {"coherences": [0.5, 1], "fixate": False, "noise_std": 0.1}),
        ("romo", {"min_diff": 0.3, "t_sd_max": 10}),
        ("simple", {"T": 201, "target": 2.0}),
        ("cosine", {"period": 4, "n_periods": 3}),
    ],
)
def test_params_round_trip_through_json(name: str, params: dict) -> None:
    task = get_task(name, **params)
    rebuilt = get_task(name, **json.loads(json.dumps(task.params())))
    assert rebuilt == task
    assert list(task.params()) == list(inspect.signature(type(task)).parameters)
    assert_batches_equal(task.sample(4, 0), rebuilt.sample(4, 0))


def test_registry() -> None:
    assert TASKS == {"cosine": Cosine, "flipflop": FlipFlop, "mante": Mante, "romo": Romo, "simple": Simple,
                     "cycling": Cycling, "flipflop3_2024": FlipFlop3, "mante2024": Mante2024, "romo2024": Romo2024,
                     "complex_sine": ComplexSine}
    assert all(issubclass(cls, Task) and cls.name == name for name, cls in TASKS.items())
    assert (Simple.stochastic, Cosine.stochastic, FlipFlop.stochastic) == (False, False, True)


# ----------------------------------------------------------------------------- flip-flop

FLIPFLOP_STEPS = {  # dt: (K, fixation, pulse, decision delay, min spacing, max spacing)
    0.5: (100, 2, 2, 10, 20, 60),
    0.25: (200, 4, 4, 20, 40, 120),
    0.1: (500, 10, 10, 50, 100, 300),
    1.0: (50, 1, 1, 5, 10, 30),
}


@pytest.mark.parametrize("dt", sorted(FLIPFLOP_STEPS))
def test_flipflop_timing(dt: float) -> None:
    k_max, n_fix, n_stim, n_delay, lo, hi = FLIPFLOP_STEPS[dt]
    task = FlipFlop(dt=dt)
    batch = task.sample(64, 0)
    assert task.n_steps == k_max
    assert not batch.inputs[:, :n_fix].any() and not batch.mask[:, : n_fix + n_delay].any()
    np.testing.assert_array_equal(batch.mask[..., 0], batch.mask[..., 1])
    for b in range(batch.batch_size):
        onsets = batch.meta["onsets"][b, : batch.meta["n_pulses"][b]]
        assert onsets[0] == n_fix and (batch.meta["onsets"][b, len(onsets) :] == -1).all()
        assert np.all((np.diff(onsets) >= lo) & (np.diff(onsets) <= hi))
        assert onsets[-1] <= k_max < onsets[-1] + hi
        pulses = runs(np.abs(batch.inputs[b]).sum(axis=1) > 0)
        assert [start for start, _ in pulses] == [s for s in onsets if s < k_max]
        assert all(stop - start == min(n_stim, k_max - start) for start, stop in pulses)
        windows = runs(batch.mask[b, :, 0] > 0)
        expected = [(s + n_delay, min(e, k_max)) for s, e in zip(onsets, [*onsets[1:], k_max]) if s + n_delay < k_max]
        assert windows == expected


@pytest.mark.parametrize("dt", sorted(FLIPFLOP_STEPS))
def test_flipflop_matches_reference_loop(dt: float) -> None:
    task = FlipFlop(dt=dt)
    variates = task.draw(40, np.random.default_rng(7))
    batch = task.build(variates)
    inputs, targets, mask, onsets = flipflop_reference(task, variates)
    np.testing.assert_array_equal(batch.inputs, inputs)
    np.testing.assert_array_equal(batch.targets, targets)
    np.testing.assert_array_equal(batch.mask, mask)
    assert [list(o[o >= 0]) for o in batch.meta["onsets"]] == onsets
    assert max(map(len, onsets)) <= task.n_slots


@FAST
@given(
    dt=st.floats(0.05, 1.0),
    extra=st.floats(0.0, 80.0),
    t_fix=st.floats(0.0, 3.0),
    t_delay=st.floats(0.0, 8.0),
    t_sd=st.tuples(st.floats(1.0, 10.0), st.floats(0.0, 20.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_flipflop_reference_for_random_parameters(
    dt: float, extra: float, t_fix: float, t_delay: float, t_sd: tuple[float, float], seed: int
) -> None:
    T = t_fix + 1.0 + extra  # just long enough for one pulse at the least
    task = FlipFlop(dt=dt, T=T, t_fix=t_fix, t_stim=1.0, t_delay=t_delay, t_sd_min=t_sd[0], t_sd_max=sum(t_sd))
    variates = task.draw(6, np.random.default_rng(seed))
    batch = task.build(variates)
    inputs, targets, mask, onsets = flipflop_reference(task, variates)
    np.testing.assert_array_equal(batch.inputs, inputs)
    np.testing.assert_array_equal(batch.targets, targets)
    np.testing.assert_array_equal(batch.mask, mask)
    np.testing.assert_array_equal(batch.meta["n_pulses"], [len(o) for o in onsets])


def test_flipflop_statistics() -> None:
    """Channels and signs uniform; spacing, pulse counts and mask coverage as in the SPEC loop."""
    task = FlipFlop()
    batch = task.sample(4000, 123)
    valid = batch.meta["onsets"] >= 0
    assert abs(np.mean(batch.meta["channels"][valid]) - 0.5) < 0.02
    assert abs(np.mean(batch.meta["signs"][valid] > 0) - 0.5) < 0.02
    first_spacing = batch.meta["onsets"][:, 1] - batch.meta["onsets"][:, 0]  # later ones are biased by the end
    values, counts = np.unique(first_spacing, return_counts=True)
    np.testing.assert_array_equal(values, np.arange(20, 60))
    assert np.all(np.abs(counts / 4000 - 1 / 40) < 0.01)
    assert set(np.unique(batch.meta["n_pulses"])) <= {2, 3, 4, 5}

    python_rng, counts, coverage = random.Random(0), [], []
    for _ in range(4000):  # independent Monte Carlo of SPEC 2.1 with Python's own generator
        s, masked, n = 2, 0, 0
        while s <= 100:
            s_next = s + int((python_rng.uniform(5, 25) + 5) / 0.5)
            masked += max(0, min(s_next, 100) - min(s + 10, 100))
            s, n = s_next, n + 1
        counts.append(n)
        coverage.append(masked / 100)
    assert abs(batch.meta["n_pulses"].mean() - np.mean(counts)) < 0.05
    assert abs(batch.mask.mean() - np.mean(coverage)) < 0.01
    targets, mask = batch.targets, batch.mask > 0
    assert set(np.unique(targets[mask])) == {-0.5, 0.5, 0.0}
    assert ((targets != 0).sum(axis=2) <= 1).all() and not targets[~mask].any()
    np.testing.assert_array_equal(np.count_nonzero(targets, axis=2) > 0, mask[..., 0])


def test_flipflop_amplitudes() -> None:
    batch = FlipFlop(input_amp=2.0, target_amp=0.25).sample(8, 0)
    assert set(np.unique(batch.inputs)) == {-2.0, 0.0, 2.0}
    assert set(np.unique(batch.targets)) == {-0.25, 0.0, 0.25}


def test_flipflop_test_batch() -> None:
    task = FlipFlop(T=100)
    first, second = task.test_batch(3, 1), task.test_batch(3, 2)
    assert first.n_steps == 200
    np.testing.assert_array_equal(first.meta["onsets"][0, :7], [2, 45, 73, 112, 145, 179, -1])
    np.testing.assert_array_equal(first.meta["channels"][0, :6], [0, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(first.meta["signs"][0, :6], [-1, 1, 1, 1, -1, -1])
    np.testing.assert_array_equal(first.inputs[0, 2:4], [[-1, 0], [-1, 0]])
    np.testing.assert_array_equal(first.targets[0, 122:145], np.tile([0, 0.5], (23, 1)))
    np.testing.assert_array_equal(first.inputs[0], second.inputs[0])
    assert not np.array_equal(first.inputs[1:], second.inputs[1:])
    short = FlipFlop().test_batch(1, 0)
    np.testing.assert_array_equal(short.meta["onsets"][0], [2, 45, 73, -1, -1])


# ----------------------------------------------------------------------------- Mante

MANTE_SEGMENTS = {  # dt: (fixation, stimulus, delay, decision)
    0.5: (6, 40, 10, 40),
    0.25: (12, 80, 20, 80),
    0.1: (30, 200, 50, 200),
    1.0: (3, 20, 5, 20),
}


@pytest.mark.parametrize("dt", sorted(MANTE_SEGMENTS))
def test_mante_segments(dt: float) -> None:
    fix, stim, delay, dec = MANTE_SEGMENTS[dt]
    task = Mante(dt=dt, noise_std=0.0)
    batch = task.sample(32, 0)
    assert task.n_steps == fix + stim + delay + dec
    on = slice(fix, fix + stim)
    context = batch.meta["context"]
    np.testing.assert_array_equal(batch.inputs[:, on, :2], np.repeat(np.eye(2)[context][:, None], stim, axis=1))
    np.testing.assert_array_equal(batch.inputs[:, on, 2:], np.repeat(batch.meta["coherences"][:, None], stim, axis=1))
    assert not batch.inputs[:, : fix].any() and not batch.inputs[:, fix + stim :].any()
    expected_mask = np.r_[np.ones(fix + stim), np.zeros(delay), np.ones(dec)]
    np.testing.assert_array_equal(batch.mask[..., 0], np.tile(expected_mask, (32, 1)))
    relevant = batch.meta["coherences"][np.arange(32), context]
    np.testing.assert_array_equal(batch.targets[:, -dec:, 0], np.repeat(0.5 * np.sign(relevant)[:, None], dec, axis=1))
    assert not batch.targets[:, :-dec].any()


def test_mante_without_fixation_masks_only_the_decision() -> None:
    batch = Mante(fixate=False).sample(4, 0)
    np.testing.assert_array_equal(batch.mask[0, :, 0], np.r_[np.zeros(56), np.ones(40)])


@pytest.mark.parametrize("dt", [0.5, 0.1])
def test_mante_noise_std(dt: float) -> None:
    task = Mante(dt=dt)
    batch = task.sample(400, 3)
    segment = np.ones(task.n_steps, bool)
    segment[steps(3, dt) : steps(23, dt)] = False
    noise_outside = batch.inputs[:, segment, 2:]
    noise_inside = batch.inputs[:, ~segment, 2:] - batch.meta["coherences"][:, None, :]
    for noise in (noise_outside, noise_inside):
        assert abs(noise.std() / (0.05 / np.sqrt(dt)) - 1) < 0.02
        assert abs(noise.mean()) < 0.01


def test_mante_statistics() -> None:
    batch = Mante().sample(8000, 5)
    coherences = batch.meta["coherences"]
    values, counts = np.unique(coherences, return_counts=True)
    np.testing.assert_allclose(values, [-1, -0.5, -0.25, -0.125, 0.125, 0.25, 0.5, 1])
    assert np.all(np.abs(counts / coherences.size - 1 / 8) < 0.01)
    assert abs(batch.meta["context"].mean() - 0.5) < 0.02
    assert abs(np.corrcoef(coherences.T)[0, 1]) < 0.05
    assert set(np.unique(batch.targets)) == {-0.5, 0.0, 0.5}


def test_mante_test_batch() -> None:
    task = Mante(noise_std=0.0)
    batch = task.test_batch(3, 0)
    np.testing.assert_array_equal(batch.meta["coherences"][0], [1.0, -0.5])
    assert batch.meta["context"][0] == 1
    np.testing.assert_array_equal(batch.inputs[0, 6:46], np.tile([0, 1, 1.0, -0.5], (40, 1)))
    np.testing.assert_array_equal(batch.targets[0, 56:, 0], np.full(40, -0.5))
    noisy_1, noisy_2 = Mante().test_batch(2, 1), Mante().test_batch(2, 2)
    assert not np.array_equal(noisy_1.inputs[0], noisy_2.inputs[0])
    np.testing.assert_array_equal(noisy_1.targets[0], noisy_2.targets[0])


# ----------------------------------------------------------------------------- Romo

ROMO_STEPS = {  # dt: (K, fixation, pulse, decision delay, decision, delay range)
    0.5: (56, 6, 2, 10, 20, (4, 15)),
    0.25: (112, 12, 4, 20, 40, (8, 31)),
    0.1: (280, 30, 10, 50, 100, (20, 79)),
    1.0: (28, 3, 1, 5, 10, (2, 7)),
}


@pytest.mark.parametrize("dt", sorted(ROMO_STEPS))
def test_romo_timing(dt: float) -> None:
    k_max, fix, pulse, delay, dec, (d_lo, d_hi) = ROMO_STEPS[dt]
    task = Romo(dt=dt)
    batch = task.sample(500, 4)
    assert task.n_steps == k_max
    d = batch.meta["delay_steps"]
    assert d.min() == d_lo and d.max() == d_hi
    for b in range(0, 500, 7):
        a1, a2, second = batch.meta["a1"][b], batch.meta["a2"][b], fix + pulse + d[b]
        expected_in = np.zeros(k_max)
        expected_in[fix : fix + pulse] = a1
        expected_in[second : second + pulse] = a2
        np.testing.assert_allclose(batch.inputs[b, :, 0], expected_in.astype(np.float32))
        start = second + pulse + delay
        expected_mask = np.zeros(k_max)
        expected_mask[: second + pulse] = 1
        expected_mask[start : start + dec] = 1
        np.testing.assert_array_equal(batch.mask[b], np.c_[expected_mask, expected_mask])
        winner = int(a2 > a1)
        assert (batch.targets[b, start : start + dec, winner] == 0.5).all()
        assert batch.targets[b].sum() == 0.5 * dec


def test_romo_default_trial_length_is_28() -> None:
    assert Romo().n_steps == 56 and Romo(dt=0.1).n_steps == 280


def test_romo_statistics() -> None:
    batch = Romo(min_diff=0.2).sample(6000, 8)
    a1, a2 = batch.meta["a1"], batch.meta["a2"]
    for a in (a1, a2):
        assert a.min() >= 0.5 and a.max() < 1.5
    assert np.abs(a1 - a2).min() >= 0.2
    assert abs(np.mean(a2 > a1) - 0.5) < 0.02
    values, counts = np.unique(batch.meta["delay_steps"], return_counts=True)
    np.testing.assert_array_equal(values, np.arange(4, 16))
    np.testing.assert_allclose(counts / counts.sum(), 1 / 12, atol=0.012)
    np.testing.assert_array_equal(np.argmax(batch.targets.sum(axis=1), axis=1), (a2 > a1).astype(int))


def test_romo_rejection_with_tight_min_diff() -> None:
    meta = Romo(min_diff=0.9).sample(200, 0).meta
    assert np.abs(meta["a1"] - meta["a2"]).min() >= 0.9


def test_romo_without_fixation() -> None:
    batch = Romo(fixate=False).test_batch(2)
    np.testing.assert_array_equal(batch.mask[0, :, 0], np.r_[np.zeros(30), np.ones(20), np.zeros(6)])


def test_romo_test_batch_is_deterministic() -> None:
    batch = Romo().test_batch(4)
    assert_batches_equal(batch, Romo().test_batch(4, rng=9))
    np.testing.assert_array_equal(batch.meta["delay_steps"], [10] * 4)
    expected_in = np.zeros(56, np.float32)
    expected_in[6:8], expected_in[18:20] = 0.6, 1.1
    np.testing.assert_array_equal(batch.inputs[:, :, 0], np.tile(expected_in, (4, 1)))
    expected_target = np.zeros((56, 2), np.float32)
    expected_target[30:50, 1] = 0.5
    np.testing.assert_array_equal(batch.targets, np.tile(expected_target, (4, 1, 1)))


@FAST
@given(dt=st.floats(0.05, 1.0), seed=st.integers(0, 2**32 - 1))
def test_romo_windows_fit_for_any_dt(dt: float, seed: int) -> None:
    task = Romo(dt=dt)
    batch = task.sample(20, seed)
    dec = steps(10, dt)
    for b in range(20):
        decision = batch.mask[b, :, 0] * (batch.targets[b].sum(axis=1) > 0)
        (start, stop), = runs(decision > 0)
        assert stop - start == dec and stop <= task.n_steps
        assert [stop - start for start, stop in runs(batch.inputs[b, :, 0] > 0)] == [steps(1, dt)] * 2


# ----------------------------------------------------------------------------- simple and cosine


@pytest.mark.parametrize(
    ("dt", "T", "k_max", "edge"), [(0.5, 101, 202, 2), (0.1, 101, 1010, 10), (1.0, 101, 101, 1), (0.5, 201, 402, 2)]
)
def test_simple_task(dt: float, T: float, k_max: int, edge: int) -> None:
    batch = Simple(dt=dt, T=T, target=2.0).sample(2, None)
    assert batch.n_steps == k_max
    np.testing.assert_array_equal(batch.inputs[0, :, 0], np.r_[np.zeros(edge), np.ones(k_max - edge)])
    np.testing.assert_array_equal(batch.mask[0, :, 0], np.r_[np.zeros(k_max - edge), np.ones(edge)])
    np.testing.assert_array_equal(batch.targets[0, :, 0], np.r_[np.zeros(k_max - edge), np.full(edge, 2.0)])


def test_cosine_task() -> None:
    batch = Cosine().sample(1, None)
    t = np.arange(200) * 0.1
    assert batch.n_steps == 200 and not batch.inputs.any()
    np.testing.assert_allclose(batch.targets[0, :, 0], np.cos(2 * np.pi * t / 5), atol=1e-6)
    assert batch.targets[0, 0, 0] == 1
    np.testing.assert_array_equal(batch.mask[0, :, 0], np.r_[np.ones(100), np.zeros(100)])


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("flipflop", {"dt": 1.5}, r"^dt must be in \(0, 1\], got 1.5$"),
        ("mante", {"dt": 0}, r"dt must be in \(0, 1\], got 0"),
        ("romo", {"dt": True}, r"dt must be in \(0, 1\], got True"),
        ("cosine", {"dt": "0.1"}, r"dt must be in \(0, 1\], got '0.1'"),
        ("flipflop", {"T": 1.0}, r"T must leave room for one pulse .* got 1.0"),
        ("flipflop", {"T": float("nan")}, r"T must be a finite real number, got nan"),
        ("flipflop", {"t_fix": -1}, r"t_fix must be >= 0, got -1"),
        ("flipflop", {"t_sd_min": 30}, r"t_sd_min must be <= t_sd_max = 25, got 30"),
        ("flipflop", {"t_stim": 0.2}, r"t_stim must last at least one step \(>= dt = 0.5\), got 0.2"),
        ("flipflop", {"t_stim": 20}, r"t_stim must fit between onsets .* got 20"),
        ("flipflop", {"input_amp": None}, r"input_amp must be a finite real number, got None"),
        ("mante", {"coherences": ()}, r"coherences must be a non-empty sequence of finite numbers > 0, got \(\)"),
        ("mante", {"coherences": (0.5, -1)}, r"coherences must be .* got \(0.5, -1\)"),
        ("mante", {"coherences": "0.5"}, r"coherences must be"),
        ("mante", {"fixate": 1}, r"fixate must be True or False, got 1"),
        ("mante", {"noise_std": -0.1}, r"noise_std must be >= 0, got -0.1"),
        ("mante", {"t_dec": 0.1}, r"t_dec must last at least one step"),
        ("romo", {"min_diff": 1.0}, r"min_diff must be < amp_max - amp_min = 1, got 1.0"),
        ("romo", {"amp_min": 2.0}, r"amp_min must be < amp_max = 1.5, got 2.0"),
        ("romo", {"t_sd_min": 9}, r"t_sd_min must be <= t_sd_max = 8, got 9"),
        ("romo", {"t_dec": 0}, r"t_dec must be > 0, got 0"),
        ("simple", {"t_fix": 200}, r"t_fix must leave at least one input step \(< T = 101\), got 200"),
        ("simple", {"t_dec": 300}, r"t_dec must be <= T = 101, got 300"),
        ("cosine", {"n_periods": 5}, r"n_periods \* period must be <= T = 20, got 25"),
        ("cosine", {"period": 0}, r"period must be > 0, got 0"),
    ],
)
def test_invalid_parameters(name: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_task(name, **params)


def test_unknown_task_and_parameter() -> None:
    allowed = "complex_sine, cosine, cycling, flipflop, flipflop3_2024, mante, mante2024, romo, romo2024, simple"
    with pytest.raises(ValueError, match=rf"^unknown task 'lstm'; allowed: {allowed}$"):
        get_task("lstm")
    with pytest.raises(ValueError, match=r"unknown parameter 'foo' for task 'romo'; allowed: dt, t_fix"):
        get_task("romo", foo=1)


@pytest.mark.parametrize("batch", [0, -3, 2.5, True])
@pytest.mark.parametrize("name", NAMES)
def test_invalid_batch(name: str, batch) -> None:
    with pytest.raises(ValueError, match=rf"batch must be an integer >= 1, got {batch!r}"):
        get_task(name).sample(batch, 0)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_rng_is_required(name: str) -> None:
    task = get_task(name)
    with pytest.raises(ValueError, match="rng is required"):
        task.sample(2, None)
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator or an int seed, got 'x'"):
        task.sample(2, "x")


@pytest.mark.parametrize("name", ["flipflop", "mante"])
def test_random_test_batches_need_rng(name: str) -> None:
    with pytest.raises(ValueError, match="rng is required"):
        get_task(name).test_batch(2)


def test_build_rejects_malformed_variates() -> None:
    task = Romo()
    variates = task.draw(3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="variates lack t_sd"):
        task.build({"a1": variates["a1"], "a2": variates["a2"]})
    with pytest.raises(ValueError, match=r"variates\['a2'\] must have shape \(batch\) with a common batch, got \(2,\)"):
        task.build({**variates, "a2": variates["a2"][:2]})
    flipflop = FlipFlop()
    wrong_slots = r"variates\['t_sd'\] must have shape \(batch, 10\) with a common batch, got \(2, 5\)"
    with pytest.raises(ValueError, match=wrong_slots):
        FlipFlop(T=100).build(flipflop.draw(2, np.random.default_rng(0)))
