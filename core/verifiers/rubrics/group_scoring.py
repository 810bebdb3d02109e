"""Scoring finished rollout records through the rubric's public ``score_rollouts``.

Environments score the rollouts of one group (an example's rollouts, unless the input rows
give a ``group_id``) together, as soon as the last of them is
generated: ``rubric.score_rollouts(prompts, completions, answers, states, tasks, infos)``
(verifiers 0.1.x's signature), so a rubric that overrides ``score_rollouts`` (voting,
ranking among an example's rollouts) or ``score_rollout`` is honoured. Rollouts that failed
before scoring (model or rollout errors) are left out of the group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from verifiers.rollout import Rollout, error_text
from verifiers.rubrics.rubric import record_error
from verifiers.rubrics.scores import RolloutScores
from verifiers.utils.async_utils import maybe_await


async def score_records(rubric: Any, records: list[Rollout]) -> None:
    """Score ``records`` as one group; sets each record's ``reward``, ``metrics`` and
    ``error`` (a failed rollout's reward is 0.0)."""
    todo = [r for r in records if not r.state.get("error")]
    if todo:
        start = time.perf_counter()
        source = f"{type(rubric).__name__}.score_rollouts"
        try:
            scores = RolloutScores.from_mapping(await maybe_await(rubric.score_rollouts(
                [r.prompt for r in todo],
                [r.completion for r in todo],
                [r.answer for r in todo],
                [r.state for r in todo],
                [r.task for r in todo],
                [r.info for r in todo],
            )))
            scores.check_length(len(todo), source)
        except Exception as exc:  # an override that fails: every rollout of the group failed
            message = f"{source} raised {type(exc).__name__}: {exc}"
            for r in todo:
                record_error(r.state, "reward_error", message)
        else:
            for i, r in enumerate(todo):
                score = scores.rollout(i)
                r.reward = float(score.reward)
                r.metrics = dict(score.metrics)
        elapsed = time.perf_counter() - start
        for r in todo:
            timing = r.state.setdefault("timing", {})
            if not timing.get("scoring_s"):
                timing["scoring_s"] = elapsed
            timing["total_s"] = timing.get("total_s", 0.0) + elapsed
    for r in records:
        r.error = error_text(r.state.get("error"))
        if r.error:
            r.reward = 0.0


class GroupScorer:
    """Collects finished records by ``group_id`` (the example id unless the input row gave
    one) and scores each group once all of its rollouts (in this call) are done;
    :meth:`add` returns when its group is scored."""

    def __init__(self, rubric: Any, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rubric = rubric
        self._expected: dict[Any, int] = {}
        for row in rows:
            key = _key(row)
            self._expected[key] = self._expected.get(key, 0) + 1
        self._done: dict[Any, list[Rollout]] = {}
        self._scored: dict[Any, asyncio.Future] = {}

    async def add(self, record: Rollout) -> None:
        """Add a finished record; returns once its group is scored."""
        waiter = await self.offer(record)
        if waiter is not None:
            await asyncio.shield(waiter)

    async def offer(self, record: Rollout) -> asyncio.Future | None:
        """Add a finished record. The record that completes its group scores the group
        here and gets ``None``; the others get a future that is done once it is scored (so
        a caller holding a concurrency slot can release it before waiting for siblings)."""
        key = _key(record)
        group = self._done.setdefault(key, [])
        group.append(record)
        future = self._scored.get(key)
        if future is None:
            future = self._scored[key] = asyncio.get_running_loop().create_future()
        if len(group) < self._expected.get(key, 1):
            return future
        try:
            await score_records(self.rubric, group)
        except BaseException:
            future.cancel()
            raise
        future.set_result(None)
        return None


def _key(row: Mapping[str, Any]) -> Any:
    key = row.get("group_id")
    if key is None:
        key = row.get("example_id")
    try:
        hash(key)
    except TypeError:
        key = repr(key)
    return key
