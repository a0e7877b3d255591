"""Summary statistics shared by the benchmarks (one definition of a percentile for every report)."""

from __future__ import annotations

import math
import statistics
from typing import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default; NaN for no values."""
    if not len(values):
        return math.nan
    data = sorted(float(v) for v in values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median_of(values: Iterable[float | None]) -> float | None:
    """Median of the values that exist (None and NaN skipped); None when there are none."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else None


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean; empty for no values."""
    if not len(values):
        return {}
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99),
            "max": float(max(values)), "mean": statistics.fmean(values)}
