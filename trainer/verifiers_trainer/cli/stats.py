"""The numbers behind a before/after comparison: means with 95% intervals, the paired
difference on the same problems, and the exact test the verdict comes from.

- A mean of 0/1 scores (an accuracy) gets the Wilson score interval; other scores a normal
  interval (mean ± 1.96 standard errors).
- The difference is paired (each problem is evaluated before and after). For 0/1 scores
  its interval is Newcombe's score interval for paired proportions (method 10 of Newcombe,
  Statistics in Medicine 17:2635, 1998: the Wilson intervals of both accuracies, combined
  with the phi correlation of the 2x2 table); for other scores the mean of the per-problem
  differences ± 1.96 standard errors.
- The verdict comes from the exact two-sided sign test on the problems whose score changed:
  ``b`` improved, ``c`` got worse; if a change were equally likely either way, ``b`` would be
  Binomial(b + c, 1/2). For 0/1 scores this is the exact McNemar test. The change is called
  real when p < 0.05, and never otherwise: with b = 3, c = 0 the smallest possible p is 0.25.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Z95 = 1.959963984540054
ALPHA = 0.05  # the verdict's significance level (two-sided)


@dataclass
class Estimate:
    """A mean with its 95% interval over ``n`` values."""

    mean: float
    low: float
    high: float
    n: int


@dataclass
class PairedDifference:
    """``after - before`` on the same ``n`` problems; ``improved`` (b) and ``worsened`` (c)
    count the problems whose score went up or down; ``p_value`` is the exact two-sided sign
    test on them (the exact McNemar test when ``binary``)."""

    mean: float
    low: float
    high: float
    n: int
    improved: int
    worsened: int
    p_value: float
    binary: bool = True

    @property
    def test_name(self) -> str:
        return "exact McNemar test" if self.binary else "exact sign test"

    @property
    def interval_name(self) -> str:
        return ("Newcombe's score interval for paired proportions" if self.binary
                else "mean of the per-problem differences ± 1.96 standard errors")

    @property
    def test_text(self) -> str:
        """``b = 3 improved, c = 0 got worse: exact McNemar test, two-sided p = 0.25``."""
        return (f"b = {self.improved} improved, c = {self.worsened} got worse: {self.test_name}, "
                f"two-sided p = {self.p_value:.3g}")

    @property
    def verdict(self) -> str:
        if self.n == 0:
            return "no problems were evaluated both before and after"
        if self.improved + self.worsened == 0:
            return "no problem changed its score: no difference to test"
        if self.p_value < ALPHA:
            way = "rose" if self.improved > self.worsened else "fell"
            return (f"the score {way}: p = {self.p_value:.3g} < {ALPHA} in the {self.test_name} "
                    f"(b = {self.improved}, c = {self.worsened})")
        smallest = mcnemar_exact(self.improved + self.worsened, 0)
        reason = (f"; with only {self.improved + self.worsened} changed problems no split "
                  f"could reach p < {ALPHA} (the smallest p is {smallest:.3g})"
                  if smallest >= ALPHA else "")
        return (f"no real change shown: p = {self.p_value:.3g} ≥ {ALPHA} in the {self.test_name} "
                f"(b = {self.improved}, c = {self.worsened}){reason}")

    @property
    def significant_rise(self) -> bool:
        return self.n > 0 and self.improved > self.worsened and self.p_value < ALPHA


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


def square_and_add(p1: float, interval1: tuple[float, float], p2: float,
                   interval2: tuple[float, float], phi: float = 0.0) -> tuple[float, float]:
    """The interval of ``p1 - p2`` from intervals of each (Newcombe's method 10); ``phi``:
    their correlation (0 for independent samples)."""
    (l1, u1), (l2, u2) = interval1, interval2
    d = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(-1.0, d - math.sqrt(max(0.0, below))), min(1.0, d + math.sqrt(max(0.0, above)))


def newcombe_paired_interval(both: int, only_after: int, only_before: int, neither: int,
                             z: float = Z95) -> tuple[float, float]:
    """The 95% score interval of ``p_after - p_before`` for paired 0/1 outcomes (Newcombe
    1998, method 10). Cells: correct both times, only after (b), only before (c), neither."""
    n = both + only_after + only_before + neither
    if n == 0:
        return math.nan, math.nan
    after, before = both + only_after, both + only_before
    margins = after * (n - after) * before * (n - before)
    phi = (both * neither - only_after * only_before) / math.sqrt(margins) if margins else 0.0
    return square_and_add(after / n, wilson_interval(after, n, z), before / n,
                          wilson_interval(before, n, z), phi)


def paired_difference(before: Mapping[Any, float], after: Mapping[Any, float]) -> PairedDifference:
    """``after - before`` over the problems in both (matched by key)."""
    keys = [k for k in before if k in after]
    n = len(keys)
    if n == 0:
        return PairedDifference(math.nan, math.nan, math.nan, 0, 0, 0, 1.0)
    diffs = [after[k] - before[k] for k in keys]
    mean = statistics.fmean(diffs)
    improved = sum(d > 0 for d in diffs)
    worsened = sum(d < 0 for d in diffs)
    binary = is_binary([before[k] for k in keys]) and is_binary([after[k] for k in keys])
    if binary:
        both = sum(before[k] == 1.0 and after[k] == 1.0 for k in keys)
        low, high = newcombe_paired_interval(both, improved, worsened,
                                             n - both - improved - worsened)
    else:
        half = Z95 * statistics.stdev(diffs) / math.sqrt(n) if n > 1 else math.inf
        low, high = mean - half, mean + half
    return PairedDifference(mean, low, high, n, improved, worsened,
                            mcnemar_exact(improved, worsened), binary)


def mcnemar_exact(improved: int, worsened: int) -> float:
    """Two-sided exact McNemar (sign test) p-value: the chance of a split at least this
    uneven among the problems that changed, if a change were equally likely either way."""
    changed = improved + worsened
    if changed == 0:
        return 1.0
    tail = sum(math.comb(changed, k) for k in range(min(improved, worsened) + 1))
    return min(1.0, 2 * tail / 2**changed)


__all__ = ["ALPHA", "Estimate", "PairedDifference", "is_binary", "mcnemar_exact",
           "mean_interval", "newcombe_paired_interval", "paired_difference", "square_and_add",
           "wilson_interval"]
