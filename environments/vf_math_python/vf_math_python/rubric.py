"""Scoring: correctness (weight 1.0), a small format penalty, and tool-use metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import verifiers as vf
from verifiers.types import Messages
from vf_math_python.answer_check import DEFAULT_TIMEOUT_S, SymbolicChecker
from vf_math_python.equivalence import answers_equivalent
from vf_math_python.parsing import final_message_text


async def correct_answer(completion: Messages, answer: str, parser: vf.Parser) -> float:
    """1.0 when the boxed answer of the last message is equivalent to the reference.

    Runs in a worker thread (the event loop goes on with other rollouts); the symbolic
    steps run in a helper process under a 3 s limit, and a check that runs out of time
    raises :class:`~vf_math_python.answer_check.AnswerCheckTimeout`, which the rubric
    records as this rollout's reward error.
    """
    return await asyncio.to_thread(_correct_answer, completion, answer, parser, None)


def correct_answer_with(checker: SymbolicChecker) -> Callable[..., Any]:
    """:func:`correct_answer` with its own :class:`SymbolicChecker` (e.g. another limit)."""

    async def correct_answer(completion: Messages, answer: str, parser: vf.Parser) -> float:
        return await asyncio.to_thread(_correct_answer, completion, answer, parser, checker)

    correct_answer.__doc__ = globals()["correct_answer"].__doc__
    return correct_answer


def _correct_answer(completion: Messages, answer: str, parser: vf.Parser,
                    checker: SymbolicChecker | None) -> float:
    predicted = parser.parse_answer(completion)
    return 1.0 if answers_equivalent(predicted, answer, checker=checker) else 0.0


def format_penalty(completion: Messages, parser: vf.Parser) -> float:
    """1.0 when the last message has no readable ``\\boxed{}`` answer (or, with a
    ThinkParser, a malformed think block); 0.0 otherwise. Weighted negatively, so a correct,
    well-formatted answer scores exactly 1.0."""
    text = final_message_text(completion)
    if not text.strip():
        return 1.0
    if isinstance(parser, vf.ThinkParser) and parser.get_format_reward_func()(
        completion=[{"role": "assistant", "content": text}]
    ) < 1.0:
        return 1.0
    return 0.0 if parser.parse(text) not in (None, "") else 1.0


def build_rubric(
    parser: vf.Parser,
    format_weight: float = 0.1,
    tools: Sequence[Callable[..., Any]] = (),
    tool_error_penalty: float = 0.0,
    answer_check_timeout: float = DEFAULT_TIMEOUT_S,
) -> vf.Rubric:
    """``reward = correct_answer - format_weight * format_penalty`` (+ tool metrics).

    ``answer_check_timeout``: seconds per symbolic check (the process-wide checker for the
    default, an own :class:`SymbolicChecker` otherwise).

    With tools, a :class:`verifiers.ToolRubric` adds ``total_tool_calls``, ``tool_errors``
    and ``python_calls`` as metrics (weight 0, or ``-tool_error_penalty`` per failed call).
    """
    if format_weight < 0:
        raise ValueError(f"format_weight is a penalty size and must be >= 0, got {format_weight}.")
    if answer_check_timeout <= 0:
        raise ValueError(f"answer_check_timeout must be > 0 seconds, got {answer_check_timeout}.")
    correct = (correct_answer if answer_check_timeout == DEFAULT_TIMEOUT_S
               else correct_answer_with(SymbolicChecker(timeout=answer_check_timeout)))
    rubric = vf.Rubric(funcs=[correct, format_penalty], weights=[1.0, -format_weight],
                       parser=parser)
    if not tools:
        return rubric
    tool_rubric = vf.ToolRubric(tools, parser=parser, error_weight=-abs(tool_error_penalty))
    return vf.RubricGroup([rubric, tool_rubric])
