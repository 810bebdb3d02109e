"""Rubric: a weighted list of reward functions.

Reward functions are plain callables, sync or async, that take any of these arguments by
name: ``prompt, completion, answer, state, task, info, parser`` (plus the rubric's
``class_objects``, e.g. ``judge``); a function with ``**kwargs`` receives them all. Each
returns a number, or ``None``/NaN for a rollout it does not score (left out of the weighted
sum; a rollout no function scores is recorded as failed).

Scoring goes through the public methods, so subclasses can override them (verifiers 0.1.x):
``score_rollouts`` (a group of rollouts: voting, ranking) calls ``score_rollout`` for each
rollout, which calls each function through ``call_reward_func``. ``reward_funcs`` and
``reward_weights`` are plain lists that may be reassigned or edited at any time.

Synchronous functions run in a worker thread (the event loop keeps serving other rollouts)
and every call is limited to ``reward_timeout`` seconds (see
:mod:`verifiers.rubrics.worker_threads` for what happens to a function that runs away).

A reward function that raises or times out does not crash the run and is not silently
scored 0: the exception is recorded on the rollout's state (``state["error"]`` and
``state["reward_errors"]``), the function's value is NaN, the rollout's reward is 0.0 and it
is counted as failed in summaries (trainers drop failed rollouts from their groups).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import numbers
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from verifiers.parsers.parser import Parser
from verifiers.rubrics.scores import RolloutScore, RolloutScores
from verifiers.rubrics.worker_threads import RewardTimeout, call_in_thread
from verifiers.types import Info, Messages, RewardFunc, State
from verifiers.utils.async_utils import maybe_await, run_sync, sync_or_async

logger = logging.getLogger(__name__)

#: Seconds one reward function call may take before it is recorded as a reward error.
DEFAULT_REWARD_TIMEOUT = 120.0

#: Public: the rubric, and the helpers reward-function wrappers (the trainer's) share with it.
__all__ = ["Rubric", "func_name", "record_error"]


def func_name(func: Callable[..., Any]) -> str:
    """A reward function's name in scores: its ``__name__`` (``lambda`` for lambdas)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "<lambda>":
        return "lambda"
    return "reward_func" if name == "reward" else name  # "reward" is the weighted sum


def unique_names(funcs: Sequence[Callable[..., Any]]) -> list[str]:
    """One score name per function; a repeated name gets ``_1``, ``_2``, ... ."""
    names: list[str] = []
    for func in funcs:
        base = name = func_name(func)
        suffix = 1
        while name in names:
            name = f"{base}_{suffix}"
            suffix += 1
        names.append(name)
    return names


def _target(func: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isfunction(func) or inspect.ismethod(func) or not callable(func):
        return func
    return func.__call__  # type: ignore[operator]


def _accepted_args(func: Callable[..., Any]) -> set[str] | None:
    """The argument names ``func`` accepts, or ``None`` if it takes ``**kwargs``."""
    params = inspect.signature(func).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def _is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(_target(func))


def record_error(state: State, error_type: str, message: str, **details: Any) -> None:
    """Mark a rollout as failed, keeping the first error as the rollout's reason."""
    error = {"type": error_type, "message": message, **details}
    state.setdefault("errors", []).append(error)
    if not state.get("error"):
        state["error"] = error


def as_reward_value(value: Any, name: str) -> float:
    """A reward function's return value as a float (``None`` is NaN: not scored)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real) and not isinstance(value, str | bytes):
        return float(value)
    raise TypeError(
        f"reward function {name} returned {type(value).__name__} ({value!r:.100}); "
        "it must return a number."
    )


class Rubric:
    """Scores rollouts with weighted reward functions.

    >>> rubric = Rubric(funcs=[correct_answer, parser.get_format_reward_func()],
    ...                 weights=[1.0, 0.2], parser=parser)
    >>> await rubric.score_rollout(prompt, completion, answer, state)
    RolloutScore(reward=1.2, metrics={"correct_answer": 1.0, "format_reward_func": 1.0})

    Args:
        funcs, weights: the reward functions and their weights (default 1.0 each).
        parser: passed to functions that take ``parser``.
        parallelize_scoring: call one rollout's functions concurrently.
        reward_timeout: seconds one call of one function may take (``None``: no limit).
        **kwargs: kept as attributes and passed to functions that take them by name.
    """

    def __init__(
        self,
        funcs: Sequence[RewardFunc] | None = None,
        weights: Sequence[float] | None = None,
        parser: Parser | None = None,
        parallelize_scoring: bool = True,
        reward_timeout: float | None = DEFAULT_REWARD_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        self.logger = logging.getLogger(f"verifiers.rubrics.{type(self).__name__}")
        funcs = list(funcs or [])
        for func in funcs:
            _check_func(func)
        if weights is None or (not weights and funcs):
            weights = [1.0] * len(funcs)
        if len(weights) != len(funcs):
            raise ValueError(
                f"Rubric got {len(funcs)} reward functions but {len(weights)} weights; "
                "give one weight per function (or none for all 1.0)."
            )
        if reward_timeout is not None and reward_timeout <= 0:
            raise ValueError(f"reward_timeout must be > 0 seconds (or None), got {reward_timeout!r}.")
        self.reward_funcs: list[RewardFunc] = funcs
        self.reward_weights: list[float] = [_check_weight(w, f) for w, f in zip(weights, funcs, strict=True)]
        self.parser = parser or Parser()
        self.parallelize_scoring = parallelize_scoring
        self.reward_timeout = reward_timeout
        self.class_objects: dict[str, Any] = {"parser": self.parser}
        for key, value in kwargs.items():
            if hasattr(type(self), key):
                raise TypeError(
                    f"{type(self).__name__}({key}=...) would replace the rubric's own {key!r}; "
                    "use another name."
                )
            setattr(self, key, value)
            self.class_objects[key] = value
        self._signatures: dict[Any, set[str] | None] = {}

    # -- configuration ---------------------------------------------------------------------
    def add_reward_func(self, func: RewardFunc, weight: float = 1.0) -> None:
        _check_func(func)
        self.reward_funcs.append(func)
        self.reward_weights.append(_check_weight(weight, func))

    def get_reward_func_names(self) -> list[str]:
        return unique_names(self.get_reward_funcs())

    def get_reward_funcs(self) -> list[RewardFunc]:
        return list(self.reward_funcs)

    def get_reward_weights(self) -> list[float]:
        return list(self.reward_weights)

    # -- one function ----------------------------------------------------------------------
    def _accepts(self, func: Callable[..., Any]) -> set[str] | None:
        try:
            return self._signatures[func]
        except KeyError:
            accepts = self._signatures[func] = _accepted_args(_target(func))
            return accepts
        except TypeError:  # unhashable callable
            return _accepted_args(_target(func))

    async def _invoke(self, func: Callable[..., Any], name: str, available: dict[str, Any]) -> float:
        """Call ``func`` with the arguments it accepts, within ``reward_timeout``."""
        accepts = self._accepts(func)
        kwargs = available if accepts is None else {k: v for k, v in available.items() if k in accepts}
        timeout = self.reward_timeout
        start = time.perf_counter()
        try:
            if _is_async(func) or getattr(func, "__vf_bounded__", False):
                value = func(**kwargs)  # async, or one of our linear-time parser rewards
            else:
                value = await call_in_thread(func, kwargs, timeout)
            if inspect.isawaitable(value):
                left = None if timeout is None else max(0.0, timeout - (time.perf_counter() - start))
                try:
                    value = await asyncio.wait_for(_awaited(value), left)
                except TimeoutError:
                    raise RewardTimeout(f"did not return within {timeout:g} s") from None
        except RewardTimeout as exc:
            raise RewardTimeout(
                f"{exc} (reward_timeout={timeout:g}; raise it with Rubric(reward_timeout=...), "
                "or None for no limit)"
            ) from None
        return as_reward_value(value, name)

    async def call_reward_func(
        self,
        func: RewardFunc,
        prompt: Messages,
        completion: Messages,
        answer: Any,
        state: State,
        task: str = "default",
        info: Info | None = None,
        **kwargs: Any,
    ) -> float:
        """Call one reward function with only the arguments it accepts (verifiers 0.1.x).

        Returns its value as a float (NaN when it does not score this rollout). When it
        raises or times out, the error is recorded on ``state`` and NaN is returned."""
        available = self._available(prompt, completion, answer, state, task, info, kwargs)
        name = func_name(func)
        try:
            return await self._invoke(func, name, available)
        except Exception as exc:
            self._record_failure(state, name, exc)
            return math.nan

    def _available(
        self, prompt: Messages, completion: Messages, answer: Any, state: State, task: str,
        info: Info | None, extra: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "prompt": prompt,
            "completion": completion,
            "answer": answer,
            "state": state,
            "task": task,
            "info": info if info is not None else {},
            **self.class_objects,
            **extra,
        }

    def _record_failure(self, state: State, name: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        state.setdefault("reward_errors", {})[name] = message
        record_error(state, "reward_error", message, func=name)
        self.logger.warning("reward function %s raised %s", name, message)

    # -- one rollout -----------------------------------------------------------------------
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
        funcs, weights = self.get_reward_funcs(), self.get_reward_weights()
        if len(weights) != len(funcs):
            raise ValueError(
                f"{type(self).__name__} has {len(funcs)} reward functions but "
                f"{len(weights)} weights; keep reward_funcs and reward_weights the same length."
            )
        names = unique_names(funcs)
        available = self._available(prompt, completion, answer, state, task, info, kwargs)
        start = time.perf_counter()

        async def attempt(func: Callable[..., Any], name: str) -> float | Exception:
            try:
                return await self._invoke(func, name, available)
            except Exception as exc:  # recorded below
                return exc

        if self.parallelize_scoring and len(funcs) > 1:
            values = await asyncio.gather(*(attempt(f, n) for f, n in zip(funcs, names, strict=True)))
        else:
            values = [await attempt(f, n) for f, n in zip(funcs, names, strict=True)]
        metrics: dict[str, float] = {}
        failed = False
        for name, value in zip(names, values, strict=True):
            if isinstance(value, Exception):
                failed = True
                metrics[name] = math.nan
                self._record_failure(state, name, value)
            else:
                metrics[name] = value
        # a function may return NaN (or None, in TRL's convention) for rollouts it does not
        # score: it is left out of the sum; a rollout that no function scores is an error
        scored = [(metrics[n], float(w)) for n, w in zip(names, weights, strict=True) if not math.isnan(metrics[n])]
        if not failed and names and not scored:
            failed = True
            record_error(state, "reward_error", "no reward function scored this rollout (all NaN)")
        reward = 0.0 if failed else sum(w * v for v, w in scored)
        state.setdefault("timing", {})["scoring_s"] = time.perf_counter() - start
        return RolloutScore(reward, metrics)

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
        """Score one rollout: ``.reward`` (weighted sum) and ``.metrics`` (per function).
        Await it in async code; in sync code it returns the result."""
        scores = await self._score(prompt, completion, answer, state, task, info, **kwargs)
        return RolloutScore.from_mapping(scores)

    def score_rollout_sync(self, *args: Any, **kwargs: Any) -> RolloutScore:
        """``score_rollout`` for synchronous callers."""

        async def go() -> RolloutScore:
            return RolloutScore.from_mapping(await maybe_await(self.score_rollout(*args, **kwargs)))

        return run_sync(go())

    # -- many rollouts ---------------------------------------------------------------------
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
        """Score a group of rollouts: ``.reward`` (one per rollout) and ``.metrics`` (one
        list per function). Calls :meth:`score_rollout` for each; override this for scores
        that compare rollouts (voting, ranking)."""
        n = len(prompts)
        if not (len(completions) == len(answers) == len(states) == n):
            raise ValueError(
                "score_rollouts needs prompts, completions, answers and states of the same "
                f"length; got {n}, {len(completions)}, {len(answers)}, {len(states)}."
            )
        tasks = list(tasks) if tasks is not None else ["default"] * n
        infos = list(infos) if infos is not None else [{} for _ in range(n)]
        limit: Any = asyncio.Semaphore(max_concurrent) if max_concurrent > 0 else nullcontext()

        async def one(i: int) -> RolloutScore:
            async with limit:
                score = self.score_rollout(
                    prompts[i], completions[i], answers[i], states[i], tasks[i], infos[i], **kwargs
                )
                return RolloutScore.from_mapping(await maybe_await(score))

        if n == 1:  # a group of one (single rollouts): no tasks to spawn
            results = [await one(0)]
        else:
            results = await asyncio.gather(*(one(i) for i in range(n)))
        return RolloutScores.from_rollouts(list(results), self.get_reward_func_names())


async def _awaited(value: Any) -> Any:
    return await value


def _check_func(func: Any) -> None:
    if not callable(func):
        raise TypeError(f"Reward functions must be callable, got {func!r}.")


def _check_weight(weight: Any, func: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or math.isnan(weight):
        raise TypeError(f"Weight for {func_name(func)} must be a number, got {weight!r}.")
    return float(weight)
