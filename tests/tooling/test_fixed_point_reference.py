"""The serial FixedPointFinder-style reference: its schedule rules, and agreement with the batched search."""

from __future__ import annotations

import numpy as np
import torch

from randstruct.dynamics.fixed_points import find_fixed_points
from randstruct.tooling.fixed_point_reference import AdaptiveClip, AdaptiveRate, match, reference


def test_adaptive_rate_rises_after_five_improvements_and_falls_after_a_spike():
    rate = AdaptiveRate()
    for i, loss in enumerate([1.0, 0.9, 0.8, 0.7, 0.6]):
        rate.update(loss)
        assert rate.rate == 1.0, i  # fewer than five changes of the loss seen
    rate.update(0.5)  # five decreases in a row
    assert np.isclose(rate.rate, 1 / 0.95)
    for loss in [0.4, 0.3, 0.2, 0.1]:
        rate.update(loss)
    assert np.isclose(rate.rate, 1 / 0.95)  # at most one change per five steps
    rate.update(5.0)  # above each of the five before it
    assert np.isclose(rate.rate, 1.0)
    for loss in [0.2, 0.3, 0.2, 0.3, 0.2]:  # neither rule: rate kept
        rate.update(loss)
    assert np.isclose(rate.rate, 1.0)


def test_adaptive_clip_is_the_95th_percentile_of_the_last_128_norms():
    clip = AdaptiveClip()
    assert clip.value == 1e12
    norms = np.arange(1.0, 201.0)
    for v in norms:
        clip.update(v)
    assert np.isclose(clip.value, np.percentile(norms[-128:], 95))


def test_reference_and_batched_find_the_same_fixed_points_of_small_networks():
    rng = np.random.default_rng(4)
    e, n, k = 2, 16, 24
    w = torch.as_tensor(1.6 * rng.standard_normal((e, n, n)) / np.sqrt(n))
    const = torch.as_tensor(0.05 * rng.standard_normal((e, 1, n))).expand(e, k, n).contiguous()
    x0 = torch.as_tensor(2.0 * rng.standard_normal((e, k, n)))
    ref, walls, iters, _ = reference(w, const, x0, "tanh", [0, 1])
    batched = find_fixed_points(w, const, x0)
    assert ref.count.sum() >= 2 and len(walls) == 2
    assert (match(batched, ref, 1e-6) == ref.count).all()  # every reference fixed point is found
    assert (batched.count >= ref.count).all()
    stable_ref = np.nansum(ref.is_stable, 1)
    assert (np.nansum(batched.is_stable, 1) >= stable_ref).all()
    assert max(iters) <= 5000
