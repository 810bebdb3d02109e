"""Score records: ``RolloutScore`` (one rollout) and ``RolloutScores`` (a batch).

Both carry verifiers 0.1.x's attributes, ``.reward`` and ``.metrics`` (one value, or one list,
per reward function), and also read as the mapping ``{"reward": ..., <function name>: ...}``,
so ``scores["reward"]``, ``scores.get("format", 0)`` and ``dict(scores)`` work too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any


class _RewardAndMetrics(MutableMapping[str, Any]):
    """The mapping view both score records share: ``"reward"`` first, then the metrics."""

    __slots__ = ()
    reward: Any
    metrics: dict[str, Any]
    _noun = "a score"

    @staticmethod
    def _reward_value(value: Any) -> Any:
        return value

    @staticmethod
    def _metric_value(value: Any) -> Any:
        return value

    def __getitem__(self, key: str) -> Any:
        if key == "reward":
            return self.reward
        return self.metrics[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "reward":
            self.reward = self._reward_value(value)
        else:
            self.metrics[key] = self._metric_value(value)

    def __delitem__(self, key: str) -> None:
        if key == "reward":
            raise KeyError(f"'reward' cannot be removed from {self._noun}")
        del self.metrics[key]

    def __iter__(self) -> Iterator[str]:
        yield "reward"
        yield from self.metrics

    def __len__(self) -> int:
        return 1 + len(self.metrics)

    __hash__ = None  # type: ignore[assignment]


class RolloutScore(_RewardAndMetrics):
    """The score of one rollout: ``reward`` (the weighted sum) and ``metrics`` (each reward
    function's value by name). As a mapping: ``{"reward": reward, **metrics}``."""

    __slots__ = ("metrics", "reward")

    def __init__(self, reward: float = 0.0, metrics: Mapping[str, float] | None = None) -> None:
        self.reward = float(reward)
        self.metrics: dict[str, float] = dict(metrics or {})
        if "reward" in self.metrics:
            raise ValueError(
                "'reward' is the weighted sum, not a metric name; rename that reward function."
            )

    @classmethod
    def from_mapping(cls, scores: Mapping[str, Any]) -> RolloutScore:
        """From ``{"reward": ..., name: value, ...}`` or ``{"reward": ..., "metrics": {...}}``."""
        if isinstance(scores, RolloutScore):
            return scores
        if "reward" not in scores:
            raise ValueError(f"A rollout score needs a 'reward' key; got keys {sorted(scores)}.")
        if isinstance(scores.get("metrics"), Mapping):
            return cls(scores["reward"], scores["metrics"])
        return cls(scores["reward"], {k: v for k, v in scores.items() if k != "reward"})

    _noun = "a rollout score"

    @staticmethod
    def _reward_value(value: Any) -> Any:
        return float(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return _same(dict(self), dict(other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"RolloutScore(reward={self.reward!r}, metrics={self.metrics!r})"

    def model_dump(self) -> dict[str, Any]:
        """The 0.1.x (pydantic) serialisation: ``{"reward": ..., "metrics": {...}}``."""
        return {"reward": self.reward, "metrics": dict(self.metrics)}


class RolloutScores(_RewardAndMetrics):
    """The scores of a batch of rollouts: ``reward`` (one per rollout) and ``metrics``
    (``{function name: [one value per rollout]}``). As a mapping: ``{"reward": [...],
    **metrics}``. ``scores.rollout(i)`` is rollout ``i``'s :class:`RolloutScore`."""

    __slots__ = ("metrics", "reward")

    def __init__(
        self, reward: list[float] | None = None, metrics: Mapping[str, list[float]] | None = None
    ) -> None:
        self.reward: list[float] = list(reward or [])
        self.metrics: dict[str, list[float]] = {k: list(v) for k, v in (metrics or {}).items()}

    @classmethod
    def from_mapping(cls, scores: Any) -> RolloutScores:
        """From a ``RolloutScores``, ``{"reward": [...], name: [...]}``, or
        ``{"reward": [...], "metrics": {...}}`` (what 0.1.x rubric overrides return)."""
        if isinstance(scores, RolloutScores):
            return scores
        if hasattr(scores, "reward") and hasattr(scores, "metrics"):  # another 0.1.x-like record
            return cls(list(scores.reward), dict(scores.metrics))
        if not isinstance(scores, Mapping) or "reward" not in scores:
            raise TypeError(
                "score_rollouts must return RolloutScores(reward=[...], metrics={...}) or a dict "
                f"with a 'reward' list; got {type(scores).__name__}."
            )
        if isinstance(scores.get("metrics"), Mapping):
            return cls(list(scores["reward"]), scores["metrics"])
        return cls(list(scores["reward"]), {k: v for k, v in scores.items() if k != "reward"})

    @classmethod
    def from_rollouts(cls, scores: list[RolloutScore], names: list[str] | None = None) -> RolloutScores:
        """Columns from per-rollout scores; a metric a rollout lacks is NaN there."""
        keys = list(names or [])
        for score in scores:
            keys += [k for k in score.metrics if k not in keys]
        return cls(
            [s.reward for s in scores],
            {k: [s.metrics.get(k, math.nan) for s in scores] for k in keys},
        )

    def rollout(self, index: int) -> RolloutScore:
        return RolloutScore(self.reward[index], {k: v[index] for k, v in self.metrics.items()})

    def check_length(self, n: int, source: str) -> None:
        """Raise when this batch does not hold exactly ``n`` rollouts' scores."""
        bad = {k: len(v) for k, v in self.metrics.items() if len(v) != n}
        if len(self.reward) != n or bad:
            raise ValueError(
                f"{source} returned scores for {len(self.reward)} rollouts "
                f"(metric lengths {bad or 'ok'}) but was given {n}; return one reward and one "
                "value per metric for each rollout, in input order."
            )

    _noun = "rollout scores"

    @staticmethod
    def _reward_value(value: Any) -> Any:
        return list(value)

    @staticmethod
    def _metric_value(value: Any) -> Any:
        return list(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            mine, theirs = dict(self), dict(other)
            return mine.keys() == theirs.keys() and all(
                len(mine[k]) == len(theirs[k])
                and all(_same_value(a, b) for a, b in zip(mine[k], theirs[k], strict=True))
                for k in mine
            )
        return NotImplemented

    def __repr__(self) -> str:
        return f"RolloutScores(reward={self.reward!r}, metrics={self.metrics!r})"

    def model_dump(self) -> dict[str, Any]:
        """The 0.1.x (pydantic) serialisation: ``{"reward": [...], "metrics": {...}}``."""
        return {"reward": list(self.reward), "metrics": {k: list(v) for k, v in self.metrics.items()}}


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)


__all__ = ["RolloutScore", "RolloutScores"]
