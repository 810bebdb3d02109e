"""Scoring costs: a reward function call in a worker thread (sync) against one on the event
loop (async), and XMLParser on adversarial text against verifiers 0.1.x's pattern.

    python benchmarks/bench_scoring.py [--json]

Ratios within one run are what compare (shared, noisy machines); the pattern is timed on
inputs small enough to finish (hundreds of characters), at two sizes, to show how it
grows.
"""

from __future__ import annotations

import json
import re
import sys
import time

import verifiers as vf

ROLLOUTS = 2000


def best(call, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def scoring() -> dict[str, float]:
    def sync_a(completion):
        return 1.0

    def sync_b(completion, answer):
        return 0.5

    async def async_a(completion):
        return 1.0

    async def async_b(completion, answer):
        return 0.5

    completion = [{"role": "assistant", "content": "x"}]
    out = {}
    for name, funcs in (("sync", [sync_a, sync_b]), ("async", [async_a, async_b])):
        rubric = vf.Rubric(funcs=funcs)
        seconds = best(lambda rubric=rubric: rubric.score_rollouts(
            [[]] * ROLLOUTS, [completion] * ROLLOUTS, ["1"] * ROLLOUTS, [{} for _ in range(ROLLOUTS)]
        ))
        out[f"{name}_us_per_call"] = round(seconds / ROLLOUTS / 2 * 1e6, 1)
    out["thread_overhead_ratio"] = round(out["sync_us_per_call"] / out["async_us_per_call"], 2)
    return out


def parsing() -> dict[str, float]:
    parser = vf.XMLParser(["think", "answer"])
    pattern = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)  # verifiers 0.1.x's
    out = {}
    for size in (250, 500):  # the pattern backtracks: its time grows much faster than the run
        text = "<answer>" + " " * size
        out[f"pattern_{size}_chars_ms"] = round(best(lambda text=text: pattern.search(text), 1) * 1e3, 1)
    text = "<answer>" + " " * 1_000_000
    out["xmlparser_1mb_ms"] = round(best(lambda: parser.parse(text)) * 1e3, 2)
    out["pattern_growth_2x_input"] = round(out["pattern_500_chars_ms"] / max(out["pattern_250_chars_ms"], 1e-3), 1)
    return out


def main() -> None:
    result = {"bench": "scoring", **scoring(), **parsing()}
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
