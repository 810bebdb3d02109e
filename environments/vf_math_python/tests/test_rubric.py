"""The rubric on hand-written completions: correctness, the format penalty, tool metrics."""

from __future__ import annotations

import asyncio

import pytest

from vf_math_python.parsing import build_parser
from vf_math_python.rubric import build_rubric, correct_answer, format_penalty


def said(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(("text", "answer", "correct", "penalty"), [
    ("It is \\boxed{18}.", "18", 1.0, 0.0),
    ("It is \\boxed{\\$18}.", "18", 1.0, 0.0),
    ("It is \\boxed{17}.", "18", 0.0, 0.0),
    ("It is 18.", "18", 0.0, 1.0),  # no box: not read as an answer, and penalised
    ("", "18", 0.0, 1.0),
])
def test_correctness_and_format(text: str, answer: str, correct: float, penalty: float):
    parser = build_parser()
    assert asyncio.run(correct_answer(said(text), answer, parser)) == correct
    assert format_penalty(said(text), parser) == penalty


def test_think_format():
    parser = build_parser(use_think=True)
    assert format_penalty(said("<think>12+6</think>\\boxed{18}"), parser) == 0.0
    assert format_penalty(said("\\boxed{18}"), parser) == 1.0  # no think block
    assert asyncio.run(correct_answer(said("\\boxed{18}"), "18", parser)) == 0.0  # 0.1.x: no </think>, no answer


def test_only_the_final_message_counts():
    parser = build_parser()
    completion = [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "python", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "18"},
        {"role": "assistant", "content": "\\boxed{18}"},
    ]
    assert format_penalty(completion, parser) == 0.0
    assert asyncio.run(correct_answer(completion, "18", parser)) == 1.0


def test_weights_and_scores():
    parser = build_parser()
    rubric = build_rubric(parser, format_weight=0.2)
    scores = rubric.score_rollout_sync([], said("It is 18."), "18", {})
    assert scores == {"reward": -0.2, "correct_answer": 0.0, "format_penalty": 1.0}
    with pytest.raises(ValueError, match="format_weight"):
        build_rubric(parser, format_weight=-1)
