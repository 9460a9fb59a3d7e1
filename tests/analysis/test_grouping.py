"""Networks grouped by g: near-equal gains are one level (issue 22 item 4)."""

import numpy as np

from randstruct.analysis.grouping import by_g, mean_sd_by_g


def test_near_equal_gains_are_one_group():
    g = np.array([0.3 * 3, 0.9, 1.8])
    levels, groups = by_g(g, np.arange(3))
    assert len(levels) == 2 and [list(x) for x in groups] == [[0, 1], [2]]
    _, mean, _, counts = mean_sd_by_g(g, np.array([1.0, 3.0, 5.0]))
    assert list(counts) == [2, 1] and list(mean) == [2.0, 5.0]
