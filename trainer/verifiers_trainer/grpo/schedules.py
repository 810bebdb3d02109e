"""Schedules over training progress: which difficulty to train on, which reward weights.

A schedule is a list of ``(until, value)`` pairs sorted by ``until``, progress measured in
epochs (``1.5`` = halfway through the second pass over the training set). The value in
force is the first whose ``until`` is above the current progress, and the last one after
the final threshold:

>>> schedule = [(1.0, "easy"), (2.0, "medium"), (3.0, "hard")]
>>> [value_at(schedule, p) for p in (0.0, 0.99, 1.0, 2.5, 7.0)]
['easy', 'easy', 'medium', 'hard', 'hard']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def check_schedule(name: str, schedule: Any) -> list[tuple[float, Any]]:
    """``schedule`` as ``[(until, value), ...]``, or a ValueError naming the field."""
    example = f'e.g. {name}=[(1.0, "easy"), (2.0, "medium")]'
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence) or not schedule:
        raise ValueError(f"{name} must be a non-empty list of (until_epoch, value) pairs, {example}; "
                         f"got {schedule!r}.")
    pairs: list[tuple[float, Any]] = []
    for item in schedule:
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2:
            raise ValueError(f"{name}: each entry must be an (until_epoch, value) pair, {example}; "
                             f"got {item!r}.")
        until, value = item
        if isinstance(until, bool) or not isinstance(until, (int, float)) or until <= 0:
            raise ValueError(f"{name}: until_epoch must be a number > 0; got {until!r} in {item!r}.")
        pairs.append((float(until), value))
    thresholds = [until for until, _ in pairs]
    if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
        raise ValueError(f"{name}: the until_epoch values must increase; got {thresholds}.")
    return pairs


def value_at(schedule: Sequence[tuple[float, Any]], progress: float) -> Any:
    """The value in force at ``progress`` epochs."""
    for until, value in schedule:
        if progress < until:
            return value
    return schedule[-1][1]


def set_reward_weights(rubric: Any, weights: Sequence[float]) -> None:
    """Set a rubric's weights: one per rubric of a RubricGroup, else one per reward function."""
    if hasattr(rubric, "set_group_weights"):
        rubric.set_group_weights(list(weights))
        return
    current = rubric.get_reward_weights()
    if len(weights) != len(current):
        names = [getattr(f, "__name__", str(f)) for f in getattr(rubric, "reward_funcs", [])]
        raise ValueError(f"reward_weights_schedule gives {len(weights)} weights, but the rubric has "
                         f"{len(current)} reward functions ({', '.join(names)}).")
    rubric.reward_weights = [float(w) for w in weights]
