"""The results of generating rollouts: one aligned list per field, plus summaries.

``GenerateOutputs`` is built from per-rollout records and answers three ways:

- as a mapping with plural keys: ``results["rewards"]``, ``results["completions"]``, ...;
- by attribute, with the plural names (``results.rewards``) or verifiers 0.1.x's singular
  ones (``results.reward``, ``.prompt``, ``.completion``, ``.answer``, ``.state``,
  ``.info``, ``.task``, ``.metrics``), which name the same lists;
- unpacked as ``prompts, completions, rewards = results`` (iterating a result yields those
  three lists; ``results.keys()`` lists the keys).

Failed rollouts stay in the lists with reward 0.0 and their reason in ``results["errors"]``;
summaries leave them out of the means and report them separately.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from math import comb
from typing import Any

FIELDS = (
    "prompts", "completions", "answers", "states", "tasks", "infos",
    "example_ids", "rollout_indices", "rewards", "errors",
)

#: verifiers 0.1.x's singular attribute names -> our keys (the same lists).
SINGULAR_NAMES = {
    "prompt": "prompts", "completion": "completions", "answer": "answers", "state": "states",
    "info": "infos", "task": "tasks", "reward": "rewards", "error": "errors",
    "example_id": "example_ids", "rollout_index": "rollout_indices",
}

#: What iterating (tuple-unpacking) a result yields, in order.
UNPACKED = ("prompts", "completions", "rewards")

# State keys that duplicate other fields or are large; left out of saved records.
_HEAVY_STATE_KEYS = {
    "prompt", "completion", "answer", "task", "info", "turns", "example_id", "responses",
}


class GenerateOutputs(dict):
    """Rollout results. Keys: prompts, completions, answers, states, tasks, infos,
    example_ids, rollout_indices, rewards, errors (``None`` or a reason per rollout), and
    metrics (``{reward function name: [values]}``).

    Columns are filled from per-rollout records (:meth:`append`) and :meth:`records` gives
    them back; the singular 0.1.x attribute names are views of the same lists. Iterating
    yields ``prompts, completions, rewards`` (see the module docstring).
    """

    def __init__(self, records: Iterable[Mapping[str, Any]] = (), **extra: Any) -> None:
        super().__init__({field: [] for field in FIELDS})
        self["metrics"] = {}
        for record in records:
            self.append(record)
        for name, value in extra.items():
            self[SINGULAR_NAMES.get(name, name)] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self[SINGULAR_NAMES.get(name, name)]
        except KeyError:
            raise AttributeError(
                f"GenerateOutputs has no {name!r}; keys: {', '.join(self.keys())}."
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        key = SINGULAR_NAMES.get(name, name)
        if key not in self:
            raise AttributeError(
                f"GenerateOutputs has no {name!r}; keys: {', '.join(self.keys())}."
            )
        self[key] = value

    def __iter__(self) -> Any:
        """``prompts, completions, rewards = env.generate(...)``."""
        return iter([self[key] for key in UNPACKED])

    @property
    def num_rollouts(self) -> int:
        return len(self["rewards"])

    def append(self, record: Mapping[str, Any]) -> None:
        n = self.num_rollouts
        self["prompts"].append(record.get("prompt"))
        self["completions"].append(record.get("completion"))
        self["answers"].append(record.get("answer", ""))
        self["states"].append(record.get("state", {}))
        self["tasks"].append(record.get("task", "default"))
        self["infos"].append(record.get("info") or {})
        self["example_ids"].append(record.get("example_id"))
        self["rollout_indices"].append(record.get("rollout_index", 0))
        self["rewards"].append(float(record.get("reward", 0.0)))
        self["errors"].append(_error_text(record.get("error")))
        metrics = record.get("metrics") or {}
        names = list(self["metrics"]) + [k for k in metrics if k not in self["metrics"]]
        for name in names:  # first-seen order, so tables list metrics the same way each run
            column = self["metrics"].setdefault(name, [math.nan] * n)
            column.append(float(metrics.get(name, math.nan)))

    def records(self) -> list[dict[str, Any]]:
        """One dict per rollout (the inverse of the constructor)."""
        out = []
        for i in range(self.num_rollouts):
            out.append({
                "example_id": self["example_ids"][i],
                "rollout_index": self["rollout_indices"][i],
                "prompt": self["prompts"][i],
                "completion": self["completions"][i],
                "answer": self["answers"][i],
                "task": self["tasks"][i],
                "info": self["infos"][i],
                "reward": self["rewards"][i],
                "metrics": {k: v[i] for k, v in self["metrics"].items()},
                "error": self["errors"][i],
                "state": self["states"][i],
            })
        return out

    def model_dump(self) -> dict[str, Any]:
        """The columns under verifiers 0.1.x's singular names (``prompt``, ``completion``,
        ``answer``, ``state``, ``info``, ``task``, ``reward``, ``metrics``), as its
        pydantic ``GenerateOutputs.model_dump()`` gave them."""
        names = ("prompt", "completion", "answer", "state", "info", "task", "reward")
        return {**{name: self[SINGULAR_NAMES[name]] for name in names}, "metrics": self["metrics"]}

    @property
    def num_failed(self) -> int:
        return sum(e is not None for e in self["errors"])

    def summary(self) -> dict[str, Any]:
        return summarize(self)


def _error_text(error: Any) -> str | None:
    if not error:
        return None
    if isinstance(error, Mapping):
        kind = error.get("type", "error")
        return f"{kind}: {error.get('message', '')}".strip()
    return str(error)


def record_to_json(record: Mapping[str, Any], keep_token_ids: bool = False) -> str:
    """One JSONL line for a rollout record (heavy state keys dropped unless asked)."""
    state = record.get("state") or {}
    drop = _HEAVY_STATE_KEYS - ({"turns"} if keep_token_ids else set())
    slim = {k: v for k, v in state.items() if k not in drop}
    out = {**record, "state": slim}
    return json.dumps(out, default=_json_default, allow_nan=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def pass_at_k(num_samples: int, num_correct: int, k: int) -> float:
    """The unbiased pass@k estimator (Chen et al., 2021) for one problem."""
    if num_samples - num_correct < k:
        return 1.0
    return 1.0 - comb(num_samples - num_correct, k) / comb(num_samples, k)


def _stats(values: list[float]) -> dict[str, float]:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.pstdev(clean) if len(clean) > 1 else 0.0
    return {"mean": statistics.fmean(clean), "std": std, "n": len(clean)}


PASS_AT_K = (1, 2, 4, 8, 16, 32, 64, 128)


def pass_at_k_by_example(groups: list[list[float]]) -> dict[int, float]:
    """Mean pass@k over examples, each a list of its rollouts' 0/1 values, for every k up to
    the smallest group's size."""
    fewest = min(len(g) for g in groups)
    return {
        k: statistics.fmean(pass_at_k(len(g), int(sum(g)), k) for g in groups)
        for k in PASS_AT_K if k <= fewest
    }


def summarize(results: GenerateOutputs) -> dict[str, Any]:
    """Means and standard deviations over successful rollouts, pass@k where rewards are
    binary, error counts by reason, and timing."""
    ok = [i for i, e in enumerate(results["errors"]) if e is None]
    rewards = [results["rewards"][i] for i in ok]
    summary: dict[str, Any] = {
        "num_rollouts": results.num_rollouts,
        "num_failed": results.num_rollouts - len(ok),
        "reward": _stats(rewards),
        "metrics": {
            name: _stats([values[i] for i in ok]) for name, values in results["metrics"].items()
        },
    }
    reasons = Counter(
        (e.split(":", 1)[0] if e else "") for e in results["errors"] if e is not None
    )
    summary["errors"] = dict(reasons)
    if rewards and all(r in (0.0, 1.0) for r in rewards):
        by_example: dict[Any, list[float]] = defaultdict(list)
        for i in ok:
            by_example[results["example_ids"][i]].append(results["rewards"][i])
        summary["pass_at_k"] = pass_at_k_by_example(list(by_example.values()))
    timings = [s.get("timing", {}) for s in results["states"]]
    summary["timing"] = {
        key: _stats([float(t[key]) for t in timings if key in t])
        for key in ("generation_s", "scoring_s", "total_s")
    }
    tokens = [s.get("usage", {}).get("completion_tokens") for s in results["states"]]
    summary["completion_tokens"] = _stats([float(t) for t in tokens if t is not None])
    return summary
