"""Rubric: a weighted list of reward functions.

Reward functions are plain callables, sync or async, that take any of these arguments by
name: ``prompt, completion, answer, state, task, info, parser`` (plus whatever a rubric
adds, e.g. ``judge``); a function with ``**kwargs`` receives them all. Each returns a number,
or ``None``/NaN for a rollout it does not score (left out of the weighted sum; a rollout no
function scores is recorded as failed).

A reward function that raises does not crash the run and is not silently scored 0: the
exception is recorded on the rollout's state (``state["error"]`` and
``state["reward_errors"]``), the function's value is NaN, the rollout's reward is 0.0 and it
is counted as failed in summaries (trainers drop failed rollouts from their groups).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from verifiers.parsers.parser import Parser
from verifiers.types import Info, Messages, RewardFunc, RolloutScore, State
from verifiers.utils.async_utils import maybe_await, run_sync, sync_or_async

logger = logging.getLogger(__name__)


def func_name(func: Callable[..., Any]) -> str:
    """A reward function's name in scores: its ``__name__`` (``lambda`` for lambdas)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "<lambda>":
        return "lambda"
    return "reward_func" if name == "reward" else name  # "reward" is the weighted sum


def _accepted_args(func: Callable[..., Any]) -> set[str] | None:
    """The argument names ``func`` accepts, or ``None`` if it takes ``**kwargs``."""
    target = func if inspect.isfunction(func) or inspect.ismethod(func) else func.__call__  # type: ignore[operator]
    params = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def record_error(state: State, error_type: str, message: str, **details: Any) -> None:
    """Mark a rollout as failed, keeping the first error as the rollout's reason."""
    error = {"type": error_type, "message": message, **details}
    state.setdefault("errors", []).append(error)
    if not state.get("error"):
        state["error"] = error


class Rubric:
    """Scores rollouts with weighted reward functions.

    >>> rubric = Rubric(funcs=[correct_answer, parser.get_format_reward_func()],
    ...                 weights=[1.0, 0.2], parser=parser)
    >>> await rubric.score_rollout(prompt, completion, answer, state)
    {"reward": 1.2, "correct_answer": 1.0, "format_reward": 1.0}
    """

    def __init__(
        self,
        funcs: Sequence[RewardFunc] | None = None,
        weights: Sequence[float] | None = None,
        parser: Parser | None = None,
        parallelize_scoring: bool = True,
        **class_objects: Any,
    ) -> None:
        funcs = list(funcs or [])
        if weights is None:
            weights = [1.0] * len(funcs)
        if len(weights) != len(funcs):
            raise ValueError(
                f"Rubric got {len(funcs)} reward functions but {len(weights)} weights; "
                "give one weight per function (or none for all 1.0)."
            )
        self.parser = parser or Parser()
        self.parallelize_scoring = parallelize_scoring
        self.reward_funcs: list[RewardFunc] = []
        self.reward_weights: list[float] = []
        self._accepts: list[set[str] | None] = []
        self._names: list[str] = []
        self.class_objects: dict[str, Any] = {"parser": self.parser, **class_objects}
        for func, weight in zip(funcs, weights, strict=True):
            self.add_reward_func(func, weight)

    # -- configuration ---------------------------------------------------------------------
    def add_reward_func(self, func: RewardFunc, weight: float = 1.0) -> None:
        if not callable(func):
            raise TypeError(f"Reward functions must be callable, got {func!r}.")
        if not isinstance(weight, int | float) or math.isnan(weight):
            raise TypeError(f"Weight for {func_name(func)} must be a number, got {weight!r}.")
        name, suffix = func_name(func), 1
        while name in self._names:  # two functions with one name: number the later ones
            name = f"{func_name(func)}_{suffix}"
            suffix += 1
        self.reward_funcs.append(func)
        self.reward_weights.append(float(weight))
        self._accepts.append(_accepted_args(func))
        self._names.append(name)

    def get_reward_func_names(self) -> list[str]:
        return list(self._names)

    def get_reward_funcs(self) -> list[RewardFunc]:
        return list(self.reward_funcs)

    def get_reward_weights(self) -> list[float]:
        return list(self.reward_weights)

    # -- scoring ---------------------------------------------------------------------------
    async def _call(self, index: int, available: dict[str, Any]) -> float:
        func, accepts = self.reward_funcs[index], self._accepts[index]
        kwargs = available if accepts is None else {k: available[k] for k in accepts if k in available}
        value = await maybe_await(func(**kwargs))
        if value is None:
            return math.nan  # "not scored" (TRL's convention)
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, int | float):
            raise TypeError(
                f"reward function {func_name(func)} returned {type(value).__name__} "
                f"({value!r}); it must return a number."
            )
        return float(value)

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
        available = {
            "prompt": prompt,
            "completion": completion,
            "answer": answer,
            "state": state,
            "task": task,
            "info": info if info is not None else {},
            **self.class_objects,
            **kwargs,
        }
        names = self._names
        start = time.perf_counter()
        indices = range(len(self.reward_funcs))
        if self.parallelize_scoring and len(self.reward_funcs) > 1:
            values = await asyncio.gather(
                *(self._call(i, available) for i in indices), return_exceptions=True
            )
        else:
            values = []
            for i in indices:
                try:
                    values.append(await self._call(i, available))
                except Exception as exc:  # recorded below
                    values.append(exc)
        scores: RolloutScore = {}
        failed = False
        for name, value in zip(names, values, strict=True):
            if isinstance(value, BaseException):
                if not isinstance(value, Exception):
                    raise value
                failed = True
                scores[name] = math.nan
                message = f"{type(value).__name__}: {value}"
                state.setdefault("reward_errors", {})[name] = message
                record_error(state, "reward_error", message, func=name)
                logger.warning("reward function %s raised %s", name, message)
            else:
                scores[name] = value
        # a function may return NaN (or None, in TRL's convention) for rollouts it does not
        # score: it is left out of the sum; a rollout that no function scores is an error
        scored = [(scores[n], w) for n, w in zip(names, self.reward_weights, strict=True)
                  if not math.isnan(scores[n])]
        if not failed and names and not scored:
            failed = True
            record_error(state, "reward_error", "no reward function scored this rollout (all NaN)")
        reward = 0.0 if failed else sum(w * v for v, w in scored)
        state.setdefault("timing", {})["scoring_s"] = time.perf_counter() - start
        return {"reward": reward, **scores}

    @sync_or_async
    async def score_rollout(
        self,
        prompt: Messages,
        completion: Messages,
        answer: Any = "",
        state: State | None = None,
        task: str = "default",
        info: Info | None = None,
        **kwargs: Any,
    ) -> RolloutScore:
        """Score one rollout. Await it in async code; in sync code it returns the result."""
        return await self._score(prompt, completion, answer, state, task, info, **kwargs)

    def score_rollout_sync(self, *args: Any, **kwargs: Any) -> RolloutScore:
        """``score_rollout`` for synchronous callers."""
        return run_sync(self._score(*args, **kwargs))

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
    ) -> dict[str, list[float]]:
        """Score many rollouts; returns ``{"reward": [...], <func name>: [...], ...}``."""
        n = len(prompts)
        if not (len(completions) == len(answers) == len(states) == n):
            raise ValueError(
                "score_rollouts needs prompts, completions, answers and states of the same "
                f"length; got {n}, {len(completions)}, {len(answers)}, {len(states)}."
            )
        tasks = list(tasks) if tasks is not None else ["default"] * n
        infos = list(infos) if infos is not None else [{} for _ in range(n)]
        limit = asyncio.Semaphore(max_concurrent) if max_concurrent > 0 else nullcontext()

        async def one(i: int) -> RolloutScore:
            async with limit:
                return await self._score(
                    prompts[i], completions[i], answers[i], states[i], tasks[i], infos[i], **kwargs
                )

        results = await asyncio.gather(*(one(i) for i in range(n)))
        keys = ["reward", *self.get_reward_func_names()]
        return {k: [r.get(k, math.nan) for r in results] for k in keys}
