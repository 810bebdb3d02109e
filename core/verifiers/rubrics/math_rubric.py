"""MathRubric: verifiers 0.1.x's math rubric (boxed answer checked with math-verify)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from verifiers.parsers.parser import Parser
from verifiers.parsers.think_parser import ThinkParser
from verifiers.rubrics.rubric import Rubric
from verifiers.types import Messages, RewardFunc
from verifiers.utils.data_utils import extract_boxed_answer

logger = logging.getLogger(__name__)

MATH_VERIFY_HINT = (
    "math-verify is not installed, so MathRubric compares answers as normalised text and "
    "numbers only (no symbolic equivalence: 1/2 and 0.5 match, x+1 and 1+x do not). "
    "Install it for verifiers 0.1.x's checking: pip install math-verify"
)


def _math_verify() -> Any:
    try:
        import math_verify
    except ImportError:
        return None
    return math_verify


_SPACES = re.compile(r"\s+")


def _normalise(text: str) -> str:
    text = text.strip().strip("$").strip()
    for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("dfrac", "frac"),
                     ("tfrac", "frac"), ("^{\\circ}", ""), ("^\\circ", ""), ("\\%", ""), ("%", "")):
        text = text.replace(old, new)
    text = re.sub(r"\\text\{(.*?)\}", r"\1", text)
    return _SPACES.sub("", text).rstrip(".")


def _number(text: str) -> float | None:
    frac = re.fullmatch(r"(-?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}", text)
    try:
        if frac:
            value = float(frac.group(2)) / float(frac.group(3))
            return -value if frac.group(1) else value
        if re.fullmatch(r"-?\d+/\d+", text):
            num, den = text.split("/")
            return float(num) / float(den)
        return float(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def plain_match(response: str, answer: str) -> bool:
    """The check used without math-verify: equal after normalisation, or equal numbers."""
    a, b = _normalise(response), _normalise(answer)
    if a == b:
        return True
    x, y = _number(a), _number(b)
    return x is not None and y is not None and abs(x - y) <= 1e-9 * max(1.0, abs(y))


class MathRubric(Rubric):
    """Adds ``correct_answer_reward_func``: 1.0 when the parsed answer (by default the
    ``\\boxed{}`` after ``</think>``) is mathematically equal to the reference.

    With ``math-verify`` installed (verifiers 0.1.x's checker) both are parsed as
    ``\\boxed{...}`` and compared symbolically. Without it the rubric says so once, in a
    warning, and compares normalised text and numbers instead. math-verify's own time
    limits use SIGALRM, which works only in the main thread; reward functions run in worker
    threads here, so the rubric's ``reward_timeout`` bounds the check instead (it cannot
    stop a runaway sympy computation, which keeps its thread until it ends; environments
    that need a hard limit check answers in a subprocess, as vf-math-python does).
    """

    def __init__(
        self,
        funcs: Sequence[RewardFunc] | None = None,
        weights: Sequence[float] | None = None,
        parser: Parser | None = None,
        **kwargs: Any,
    ) -> None:
        parser = parser or ThinkParser(extract_fn=extract_boxed_answer)
        super().__init__(funcs=funcs, weights=weights, parser=parser, **kwargs)
        self.math_verify = _math_verify()
        if self.math_verify is None:
            logger.warning(MATH_VERIFY_HINT)
        self.add_reward_func(self.correct_answer_reward_func)

    def correct_answer_reward_func(
        self, parser: Parser, completion: Messages, answer: str, **kwargs: Any
    ) -> float:
        """1.0 when the final answer equals the reference answer, else 0.0."""
        response = parser.parse_answer(completion) or ""
        if response == "":
            return 0.0
        mv = self.math_verify
        if mv is None:
            return 1.0 if plain_match(str(response), str(answer)) else 0.0
        gold = mv.parse(f"\\boxed{{{answer}}}", parsing_timeout=None)
        given = mv.parse(f"\\boxed{{{response}}}", parsing_timeout=None)
        return 1.0 if mv.verify(gold, given, timeout_seconds=None) else 0.0
