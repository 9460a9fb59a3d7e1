"""Networks grouped by their gain g: the one place that decides which networks share a g value."""

from __future__ import annotations

import warnings

import numpy as np


def by_g(g: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct gains (ascending) and, for each, the entries of ``values`` (first axis: network)
    of the networks with that gain (``np.isclose``, so 0.3 * 3 and 0.9 meet)."""
    g = np.asarray(g, dtype=float)
    distinct = np.unique(g)
    levels = distinct[np.r_[True, ~np.isclose(distinct[1:], distinct[:-1])]]  # near-equal gains are one level
    values = np.asarray(values)
    return levels, [values[np.isclose(g, lv)] for lv in levels]


def mean_sd_by_g(g: np.ndarray, values: np.ndarray, include: np.ndarray | None = None, min_count: int = 1,
                 skipna: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per gain: mean and population sd over the included networks, and how many were included.

    A gain with fewer than ``min_count`` included networks gets NaN; ``skipna`` ignores NaN entries
    (a network that never reached a threshold) instead of propagating them. Trailing axes of
    ``values`` are kept: (net, k) gives (levels, k).
    """
    values = np.asarray(values, dtype=float)
    keep = np.ones(len(values), bool) if include is None else np.asarray(include, bool)
    levels, groups = by_g(g, values)
    _, kept = by_g(g, keep)
    mean = np.full((len(levels),) + values.shape[1:], np.nan)
    sd = np.full_like(mean, np.nan)
    counts = np.array([int(k.sum()) for k in kept])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN group is NaN, as intended
        for i, (v, k) in enumerate(zip(groups, kept)):
            if counts[i] >= max(1, min_count):
                mean[i] = (np.nanmean if skipna else np.mean)(v[k], axis=0)
                sd[i] = (np.nanstd if skipna else np.std)(v[k], axis=0)
    return levels, mean, sd, counts
