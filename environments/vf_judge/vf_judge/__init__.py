"""vf-judge: free-form answers judged against a reference by LLM judges.

The policy answers a question (GSM8K by default) in free form; one or several judge models,
reached through any OpenAI-compatible endpoint, compare the response with the reference
answer and reply yes/no or a score. ``vf.JudgeRubric`` turns the replies into a reward in
[0, 1] (aggregated over judges), keeps every judge's prompt, reply and score in
``state["judge"]``, and records a judge that times out or gives no readable verdict as an
error on the rollout (``state["error"]``, ``results["errors"]``) instead of scoring it 0.

    env = vf.load_environment("vf-judge", judge_base_url="http://127.0.0.1:8001/v1")
    results = env.evaluate(OpenAI(base_url=..., api_key="EMPTY"), "my-model", num_examples=5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import verifiers as vf
from vf_judge.data import DataFiles, load_split, take
from vf_judge.judge_client import (
    JudgeAPIKeyError,
    is_local_url,
    make_judge_client,
    resolve_judge_api_key,
    resolve_judge_base_url,
)
from vf_judge.prompts import DEFAULT_JUDGE_TEMPLATE, DEFAULT_SYSTEM_PROMPT, check_template
from vf_judge.rubric import build_judge_rubric, judge_model_list

__all__ = [
    "DEFAULT_JUDGE_TEMPLATE",
    "DEFAULT_SYSTEM_PROMPT",
    "JudgeAPIKeyError",
    "is_local_url",
    "load_environment",
    "resolve_judge_api_key",
    "resolve_judge_base_url",
]


def load_environment(
    judge_model: str = "gpt-4.1-mini",
    judge_models: Sequence[str] | None = None,
    aggregation: str = "mean",
    judge_base_url: str | None = None,
    judge_api_key_var: str = "OPENAI_API_KEY",
    judge_template: str | None = None,
    judge_sampling_args: Mapping[str, Any] | None = None,
    judge_timeout: float = 120.0,
    judge_max_retries: int = 3,
    judge_max_score: float = 10.0,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    num_train_examples: int = -1,
    num_eval_examples: int = 100,
    dataset_name: str = "gsm8k",
    data_files: DataFiles = None,
) -> vf.SingleTurnEnv:
    """A single-turn environment scored by LLM judges.

    Args:
        judge_model: the judge model's name (ignored when ``judge_models`` is given).
        judge_models: several judges, asked concurrently and combined by ``aggregation``.
        aggregation: ``"mean"``, ``"min"``, ``"max"`` or ``"majority"`` (1.0 when more than
            half of the judges score >= 0.5, else 0.0).
        judge_base_url: the judges' OpenAI-compatible endpoint; default ``$OPENAI_BASE_URL``,
            else OpenAI.
        judge_api_key_var: the environment variable holding the judges' API key. Checked
            at load: unset with a non-local endpoint raises :class:`JudgeAPIKeyError`; a
            local endpoint (127.0.0.1, localhost) then gets ``"EMPTY"``.
        judge_template: the judge prompt, a ``str.format`` template with ``{question}``,
            ``{answer}`` (the reference) and ``{response}``; default asks for yes/no.
        judge_sampling_args: sampling arguments of judge requests (e.g. temperature).
        judge_timeout: seconds per judge request before it counts as timed out.
        judge_max_retries: retries of a judge request that timed out or failed transiently.
        judge_max_score: the top of a numeric verdict's scale (a score above 1 is divided
            by it).
        system_prompt: the policy's system prompt (None for none).
        num_train_examples: training rows to keep (-1: all; 0: no training set).
        num_eval_examples: evaluation rows to keep (-1: all; 0: no eval set).
        dataset_name: ``"gsm8k"``, or a dataset with ``question``/``answer`` columns.
        data_files: local JSON/JSONL file(s) instead of the default source: one path for
            both splits, or ``{"train": path, "test": path}``.
    """
    models = judge_model_list(judge_model, judge_models)
    template = check_template(judge_template if judge_template is not None else DEFAULT_JUDGE_TEMPLATE)
    if judge_timeout is None or judge_timeout <= 0:
        raise ValueError(f"judge_timeout must be > 0 seconds, got {judge_timeout!r}.")
    if judge_max_score <= 0:
        raise ValueError(f"judge_max_score must be > 0, got {judge_max_score!r}.")
    client = make_judge_client(judge_base_url, judge_api_key_var)
    parser = vf.Parser()
    rubric = build_judge_rubric(
        client, models, template, aggregation, judge_sampling_args,
        judge_timeout, judge_max_retries, judge_max_score, parser=parser,
    )
    dataset = eval_dataset = None
    if num_train_examples != 0:
        dataset = load_split(dataset_name, "train", data_files)
        dataset = take(dataset, num_train_examples) if dataset is not None else None
    if num_eval_examples != 0:
        eval_dataset = load_split(dataset_name, "test", data_files)
        eval_dataset = take(eval_dataset, num_eval_examples) if eval_dataset is not None else None
    if dataset is None and eval_dataset is None:
        raise ValueError(
            "vf-judge has no data: num_train_examples and num_eval_examples are both 0, or "
            "data_files names neither a 'train' nor a 'test' file."
        )
    return vf.SingleTurnEnv(
        dataset=dataset,
        eval_dataset=eval_dataset,
        system_prompt=system_prompt,
        parser=parser,
        rubric=rubric,
    )
