"""The benchmarks' one percentile: numpy's linear interpolation, NaN (not an error) for no samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.stats import median_of, percentile, summary


@pytest.mark.parametrize("values", [[5.0], [3.0, 1.0, 2.0], [0.1 * i * i for i in range(101)], [2, 2, 9, 1]])
@pytest.mark.parametrize("q", [0, 1, 50, 95, 99, 100])
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_no_samples() -> None:
    assert math.isnan(percentile([], 50))
    assert summary([]) == {}
    assert median_of([None, math.nan]) is None


def test_summary() -> None:
    values = [float(i) for i in range(1, 101)]
    assert summary(values) == {"p50": 50.5, "p90": pytest.approx(90.1), "p99": pytest.approx(99.01),
                               "max": 100.0, "mean": 50.5}
    assert median_of([None, 1.0, 4.0]) == 2.5
