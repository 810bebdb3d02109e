"""RubricGroup: several rubrics scored together, each with a group weight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from verifiers.rubrics.rubric import Rubric
from verifiers.types import Info, Messages, RolloutScore, State


class RubricGroup(Rubric):
    """Combines rubrics: ``reward = sum(group_weight[i] * rubric[i].reward)``.

    Each rubric's functions are reported under their own names (a name used by two rubrics
    gets the rubric's index as a suffix). Group weights start at 1.0 and can be changed
    between phases of training with :meth:`set_group_weights`.
    """

    def __init__(self, rubrics: Sequence[Rubric], weights: Sequence[float] | None = None) -> None:
        if not rubrics:
            raise ValueError("RubricGroup needs at least one rubric.")
        for r in rubrics:
            if not isinstance(r, Rubric):
                raise TypeError(f"RubricGroup takes Rubric objects, got {type(r).__name__}.")
        super().__init__(parser=rubrics[0].parser)
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

    def _group_names(self) -> list[list[str]]:
        seen: set[str] = set()
        out = []
        for i, rubric in enumerate(self.rubrics):
            names = []
            for name in rubric.get_reward_func_names():
                unique = name if name not in seen else f"{name}_{i}"
                seen.add(unique)
                names.append(unique)
            out.append(names)
        return out

    def get_reward_func_names(self) -> list[str]:
        return [n for names in self._group_names() for n in names]

    def get_reward_funcs(self) -> list[Any]:
        return [f for r in self.rubrics for f in r.get_reward_funcs()]

    def get_reward_weights(self) -> list[float]:
        return [
            gw * w
            for gw, r in zip(self.group_weights, self.rubrics, strict=True)
            for w in r.get_reward_weights()
        ]

    def add_reward_func(self, func: Any, weight: float = 1.0) -> None:
        if not hasattr(self, "rubrics"):  # during Rubric.__init__
            return super().add_reward_func(func, weight)
        self.rubrics[0].add_reward_func(func, weight)

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
        parts = await asyncio.gather(
            *(r._score(prompt, completion, answer, state, task, info, **kwargs) for r in self.rubrics)
        )
        scores: RolloutScore = {"reward": 0.0}
        for weight, names, part, rubric in zip(
            self.group_weights, self._group_names(), parts, self.rubrics, strict=True
        ):
            scores["reward"] += weight * part["reward"]
            for unique, original in zip(names, rubric.get_reward_func_names(), strict=True):
                scores[unique] = part[original]
        if state.get("reward_errors"):
            scores["reward"] = 0.0
        return scores
