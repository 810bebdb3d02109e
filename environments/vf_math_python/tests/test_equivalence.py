"""Answer checking: a table of equivalent and non-equivalent pairs, and the parser."""

from __future__ import annotations

import time

import pytest

from vf_math_python.equivalence import (
    answers_equivalent,
    is_safe_expression,
    is_unevaluated,
    normalize_answer,
    sympy_equivalent,
    to_fraction,
)
from vf_math_python.parsing import build_parser

EQUIVALENT = [
    # (model answer, reference)
    ("18", "18"),
    ("$18", "18"),
    ("\\$18", "18"),
    ("\\$18.00", "18"),
    ("18 dollars", "18"),
    ("18.0", "18"),
    ("USD 18", "18"),
    ("1,234", "1234"),
    ("1{,}234", "1234"),
    ("1,000,000", "1000000"),
    ("50%", "50"),
    ("50\\%", "50"),
    ("50 percent", "50"),
    ("0.5", "\\frac{1}{2}"),
    ("\\frac12", "1/2"),
    ("\\dfrac{3}{4}", "0.75"),
    ("-7/3", "-\\frac{7}{3}"),
    ("\\frac{-7}{3}", "-7/3"),
    ("−3", "-3"),
    ("1.5", "3/2"),
    ("\\boxed{3}", "3"),
    ("The answer is 42", "42"),
    ("42.", "42"),
    ("5 \\text{ cm}", "5"),
    ("12 apples", "12"),
    ("90^\\circ", "90"),
    ("1+x", "x+1"),
    ("2x+1", "1+2*x"),
    ("x^2-1", "(x-1)(x+1)"),
    ("\\frac{\\sqrt2}{2}", "\\sqrt{2}/2"),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"),
    ("2\\pi", "2\\pi"),
    ("\\{2,1\\}", "\\{1,2\\}"),
    ("x=3", "3"),
    ("1.2 \\times 10^{3}", "1200"),  # scientific notation is a number
    ("-5", "-5"),
]

NOT_EQUIVALENT = [
    ("5", "6"),
    ("1/3", "0.333"),
    ("4", "4.0001"),
    ("-18", "18"),
    ("\\pi", "3.14"),
    ("1,2", "12"),  # a list of two numbers, not twelve
    ("(1,2)", "(2,1)"),
    ("x+1", "x-1"),
    ("", "0"),
    (None, "1"),
    ("no idea", "7"),
    ("9^{9^{9^9}}", "1"),  # too risky to evaluate: not equivalent, and fast
    ("10^{100000}", "1"),
    ("__import__('os').system('echo pwned')", "0"),
    # a numeric reference asks for the number: the operation left undone is not an answer
    ("345 * 35", "12075"),
    ("\\boxed{345 \\times 35}", "12075"),
    ("448 × 35", "15680"),
    ("3 + 4", "7"),
    ("10 - 3", "7"),
    ("2^{10}", "1024"),
    ("2**10", "1024"),
    ("6 \\cdot 7", "42"),
    ("5!", "120"),
    ("x = 3 + 4", "7"),
    ("(3)(4) + 0", "12"),
]


@pytest.mark.parametrize(("predicted", "reference"), EQUIVALENT)
def test_equivalent(predicted: str, reference: str):
    assert answers_equivalent(predicted, reference)


@pytest.mark.parametrize(("predicted", "reference"), NOT_EQUIVALENT)
def test_not_equivalent(predicted: str | None, reference: str):
    start = time.perf_counter()
    assert not answers_equivalent(predicted, reference)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(("text", "normal"), [
    ("\\boxed{\\$1{,}234.50}", "1234.50"),
    ("  18 dollars ", "18"),
    ("\\text{Final answer: } 7", "7"),
    ("50\\%", "50"),
    ("$\\dfrac{1}{2}$", "\\frac{1}{2}"),
])
def test_normalize(text: str, normal: str):
    assert normalize_answer(text) == normal


def test_unevaluated_answers_only_fail_numeric_references():
    assert is_unevaluated("345 * 35") and is_unevaluated("2^{10}") and is_unevaluated("5!")
    assert not is_unevaluated("-12") and not is_unevaluated("1.5 \\times 10^{-2}")
    assert answers_equivalent("x^2 - 1", "(x-1)(x+1)")  # a symbolic reference: unchanged


def test_exact_fractions():
    assert to_fraction("\\frac{6}{4}") == to_fraction("3/2") == to_fraction("1.5")
    assert to_fraction("x") is None


def test_sympy_fallback_alone():
    assert sympy_equivalent("(x+1)^2", "x^2 + 2x + 1")
    assert sympy_equivalent("\\frac{1}{2} + \\frac{1}{3}", "5/6")
    assert not sympy_equivalent("(x+1)^2", "x^2 + 1")


def test_no_code_reaches_sympy_eval():
    assert not is_safe_expression("__import__('os')")
    assert not is_safe_expression("x.__class__")
    assert not is_safe_expression("lambda: 1")
    assert is_safe_expression("sqrt(2)*x + pi")
    assert not sympy_equivalent("__import__('os').getpid()", "1")


@pytest.mark.parametrize(("text", "answer"), [
    ("So the total is \\boxed{42}.", "42"),
    ("First \\boxed{1}, then corrected: \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("The answer is 42.", None),
])
def test_parser_reads_the_last_boxed_answer(text: str, answer: str | None):
    parser = build_parser()
    assert parser.parse_answer([{"role": "assistant", "content": text}]) == answer


def test_think_parser_reads_after_think():
    parser = build_parser(use_think=True)
    done = [{"role": "assistant", "content": "<think>maybe \\boxed{1}</think> \\boxed{2}"}]
    unclosed = [{"role": "assistant", "content": "<think>still thinking \\boxed{1}"}]
    assert parser.parse_answer(done) == "2"
    assert parser.parse_answer(unclosed) is None
