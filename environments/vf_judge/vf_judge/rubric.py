"""The judge rubric: ``vf.JudgeRubric`` configured from ``load_environment``'s arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import verifiers as vf
from verifiers.clients import normalize_sampling_args

AGGREGATIONS = ("mean", "min", "max", "majority")


def judge_model_list(judge_model: str, judge_models: Sequence[str] | None) -> list[str]:
    """The judges to ask: ``judge_models`` when given, else ``[judge_model]``."""
    if judge_models is None:
        models: list[Any] = [judge_model]
    elif isinstance(judge_models, str):
        models = [judge_models]
    else:
        models = list(judge_models)
    if not models or not all(isinstance(m, str) and m.strip() for m in models):
        raise ValueError(
            f"judge_models must be a non-empty list of model names, got {judge_models!r}."
        )
    return models


def build_judge_rubric(
    judge_client: Any,
    judge_models: list[str],
    template: str,
    aggregation: str,
    judge_sampling_args: Mapping[str, Any] | None,
    judge_timeout: float,
    judge_max_retries: int,
    max_score: float,
    parser: vf.Parser | None = None,
) -> vf.JudgeRubric:
    """A ``vf.JudgeRubric`` whose one reward, ``judge_score``, is the judges' aggregated
    score in [0, 1]. Non-OpenAI sampling keys (``top_k``, ...) go to ``extra_body``.
    Each judge's prompt, reply and score is kept in ``state["judge"]``; a judge that times
    out or gives no readable verdict fails the rollout (``state["error"]``)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"aggregation={aggregation!r}: use one of {', '.join(AGGREGATIONS)}."
        )
    rubric = vf.JudgeRubric(
        judge_client=judge_client,
        judge_models=judge_models,
        template=template,
        aggregation=aggregation,  # type: ignore[arg-type]
        judge_sampling_args=normalize_sampling_args(dict(judge_sampling_args or {})),
        max_score=max_score,
        retry_policy=vf.RetryPolicy(timeout=judge_timeout, max_retries=judge_max_retries),
        parser=parser,
        funcs=[],
    )
    rubric.add_reward_func(rubric.judge_score, 1.0)  # the one reward, stated here
    return rubric
