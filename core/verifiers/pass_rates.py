"""pass@k for every 0/1 metric of a run (``correct_answer``, a judge's verdict, ...), not only
for the reward: for each metric whose values on the successful rollouts are all 0 or 1, the
unbiased estimator averaged over examples, for k = 1, 2, 4, ... up to the fewest rollouts
any example has. Failed rollouts are left out, as in the other summaries."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from verifiers.results import pass_at_k_by_example


def binary_metric_pass_at_k(results: Any) -> dict[str, dict[int, float]]:
    """``{metric: {k: pass@k}}`` for each 0/1 metric of ``results`` (a ``GenerateOutputs``)."""
    ok = [i for i, error in enumerate(results["errors"]) if error is None]
    example_ids = results["example_ids"]
    out: dict[str, dict[int, float]] = {}
    for name, values in results["metrics"].items():
        by_example: dict[Any, list[float]] = defaultdict(list)
        for i in ok:
            value = values[i]
            if not math.isnan(value):
                by_example[example_ids[i]].append(value)
        scored = [v for group in by_example.values() for v in group]
        if not scored or any(v not in (0.0, 1.0) for v in scored):
            continue
        out[name] = pass_at_k_by_example(list(by_example.values()))
    return out


__all__ = ["binary_metric_pass_at_k"]
