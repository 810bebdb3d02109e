"""RubricGroup: several rubrics scored together, each with a group weight."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from verifiers.rubrics.rubric import Rubric
from verifiers.rubrics.scores import RolloutScore, RolloutScores
from verifiers.types import Info, Messages, RewardFunc, State
from verifiers.utils.async_utils import maybe_await, sync_or_async


def _add(a: float, b: float) -> float:
    """A sum in which NaN ("not scored") only wins when both sides are NaN."""
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return a + b


def _errors(state: State) -> int:
    return len(state.get("errors") or [])


class RubricGroup(Rubric):
    """Combines rubrics (verifiers 0.1.x): each rubric scores the rollouts through its own
    ``score_rollouts`` (so a member's override is honoured), rewards are summed, and metrics
    of reward functions with the same name are summed (one entry per name).

    Each rubric also has a group weight, ``reward = sum(group_weight[i] * rubric[i].reward)``;
    weights start at 1.0 and can be changed between phases of training with
    :meth:`set_group_weights`.
    """

    def __init__(
        self, rubrics: Sequence[Rubric], weights: Sequence[float] | None = None, **kwargs: Any
    ) -> None:
        if not rubrics:
            raise ValueError("RubricGroup needs at least one rubric.")
        for r in rubrics:
            if not isinstance(r, Rubric):
                raise TypeError(f"RubricGroup takes Rubric objects, got {type(r).__name__}.")
        kwargs.setdefault("parser", rubrics[0].parser)
        super().__init__(**kwargs)
        self.rubrics = list(rubrics)
        self.group_weights: list[float] = []
        self.set_group_weights(weights if weights is not None else [1.0] * len(self.rubrics))

    def get_group_weights(self) -> list[float]:
        return list(self.group_weights)

    def set_group_weights(self, weights: Sequence[float] | dict[int, float]) -> None:
        """Set one weight per rubric (a list in rubric order, or ``{index: weight}``)."""
        if isinstance(weights, dict):
            new = self.get_group_weights() or [1.0] * len(self.rubrics)
            for index, weight in weights.items():
                if not 0 <= index < len(self.rubrics):
                    raise IndexError(f"No rubric {index}; this group has {len(self.rubrics)}.")
                new[index] = float(weight)
            weights = new
        if len(weights) != len(self.rubrics):
            raise ValueError(
                f"set_group_weights got {len(weights)} weights for {len(self.rubrics)} rubrics."
            )
        self.group_weights = [float(w) for w in weights]

    def get_reward_func_names(self) -> list[str]:
        """Each name once, in first-seen order (same-named functions are summed)."""
        names: list[str] = []
        for rubric in self.rubrics:
            names += [n for n in rubric.get_reward_func_names() if n not in names]
        return names

    def get_reward_funcs(self) -> list[RewardFunc]:
        return [f for r in self.rubrics for f in r.get_reward_funcs()]

    def get_reward_weights(self) -> list[float]:
        return [
            gw * w
            for gw, r in zip(self.group_weights, self.rubrics, strict=True)
            for w in r.get_reward_weights()
        ]

    def add_reward_func(self, func: Any, weight: float = 1.0) -> None:
        """Added to the first rubric of the group (verifiers 0.1.x)."""
        self.rubrics[0].add_reward_func(func, weight)

    def _combine(self, parts: Sequence[RolloutScores], states: Sequence[State], before: list[int]) -> RolloutScores:
        n = len(states)
        reward = [0.0] * n
        metrics: dict[str, list[float]] = {}
        for weight, part in zip(self.group_weights, parts, strict=True):
            reward = [r + weight * p for r, p in zip(reward, part.reward, strict=True)]
            for name, values in part.metrics.items():
                old = metrics.get(name)
                metrics[name] = list(values) if old is None else [_add(a, b) for a, b in zip(old, values, strict=True)]
        for i, state in enumerate(states):
            if _errors(state) > before[i]:  # a member failed this rollout
                reward[i] = 0.0
        return RolloutScores(reward, metrics)

    async def _score(
        self,
        prompt: Messages,
        completion: Messages,
        answer: Any = "",
        state: State | None = None,
        task: str = "default",
        info: Info | None = None,
        **kwargs: Any,
    ) -> RolloutScore:
        state = {} if state is None else state
        before = [_errors(state)]
        parts = await asyncio.gather(*(
            maybe_await(r.score_rollout(prompt, completion, answer, state, task, info, **kwargs))
            for r in self.rubrics
        ))
        batch = [RolloutScores.from_rollouts([RolloutScore.from_mapping(p)]) for p in parts]
        return self._combine(batch, [state], before).rollout(0)

    @sync_or_async
    async def score_rollouts(
        self,
        prompts: Sequence[Messages],
        completions: Sequence[Messages],
        answers: Sequence[Any],
        states: Sequence[State],
        tasks: Sequence[str] | None = None,
        infos: Sequence[Info] | None = None,
        max_concurrent: int = -1,
        **kwargs: Any,
    ) -> RolloutScores:
        """Every rubric's ``score_rollouts``, combined: rewards summed (by group weight),
        same-named metrics summed."""
        n = len(prompts)
        before = [_errors(s) for s in states]
        parts = []
        for rubric in self.rubrics:  # one after another, as in 0.1.x (members may share state)
            part = RolloutScores.from_mapping(await maybe_await(rubric.score_rollouts(
                prompts, completions, answers, states, tasks, infos, max_concurrent, **kwargs
            )))
            part.check_length(n, f"{type(rubric).__name__}.score_rollouts")
            parts.append(part)
        return self._combine(parts, states, before)


__all__ = ["RubricGroup"]
