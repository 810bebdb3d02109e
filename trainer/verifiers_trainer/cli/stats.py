"""The numbers behind a before/after comparison: means with 95% intervals, and the paired
difference on the same problems.

- A mean of 0/1 scores (an accuracy) gets the Wilson score interval; other scores a normal
  interval (mean ± 1.96 standard errors).
- The difference is paired (each problem is evaluated before and after): the mean of the
  per-problem differences ± 1.96 standard errors of that mean, and for 0/1 scores the exact
  McNemar test (a two-sided binomial test on the problems that changed).
- The rise "exceeds its noise" when the whole 95% interval of the difference is above zero.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054


@dataclass
class Estimate:
    """A mean with its 95% interval over ``n`` values."""

    mean: float
    low: float
    high: float
    n: int


@dataclass
class PairedDifference:
    """``after - before`` on the same ``n`` problems."""

    mean: float
    low: float
    high: float
    n: int
    improved: int
    worsened: int
    p_value: float | None  # exact McNemar for 0/1 scores, else None

    @property
    def verdict(self) -> str:
        if self.n == 0:
            return "no problems were evaluated both before and after"
        if self.low > 0:
            return "the rise exceeds its noise (the 95% interval of the difference is above 0)"
        if self.high < 0:
            return "the score fell by more than its noise (the 95% interval is below 0)"
        return "the change is within the noise (the 95% interval of the difference contains 0)"

    @property
    def significant_rise(self) -> bool:
        return self.n > 0 and self.low > 0


def is_binary(values: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def mean_interval(values: Sequence[float]) -> Estimate:
    """The mean and its 95% interval (Wilson for 0/1 values, normal otherwise)."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = statistics.fmean(values)
    if is_binary(values):
        low, high = wilson_interval(int(sum(values)), n)
        return Estimate(mean, low, high, n)
    half = Z95 * statistics.stdev(values) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(mean, mean - half, mean + half, n)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n``."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(before: Mapping[Any, float], after: Mapping[Any, float]) -> PairedDifference:
    """``after - before`` over the problems in both (matched by key)."""
    keys = [k for k in before if k in after]
    n = len(keys)
    if n == 0:
        return PairedDifference(math.nan, math.nan, math.nan, 0, 0, 0, None)
    diffs = [after[k] - before[k] for k in keys]
    mean = statistics.fmean(diffs)
    half = Z95 * statistics.stdev(diffs) / math.sqrt(n) if n > 1 else math.inf
    improved = sum(d > 0 for d in diffs)
    worsened = sum(d < 0 for d in diffs)
    binary = is_binary([before[k] for k in keys]) and is_binary([after[k] for k in keys])
    p_value = mcnemar_exact(improved, worsened) if binary else None
    return PairedDifference(mean, mean - half, mean + half, n, improved, worsened, p_value)


def mcnemar_exact(improved: int, worsened: int) -> float:
    """Two-sided exact McNemar p-value: the chance of a split at least this uneven among
    the problems that changed, if a change were equally likely either way."""
    changed = improved + worsened
    if changed == 0:
        return 1.0
    tail = sum(math.comb(changed, k) for k in range(min(improved, worsened) + 1))
    return min(1.0, 2 * tail / 2**changed)


__all__ = ["Estimate", "PairedDifference", "is_binary", "mcnemar_exact", "mean_interval",
           "paired_difference", "wilson_interval"]
