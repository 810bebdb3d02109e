"""Is the model's answer the same as the reference answer?

:func:`answers_equivalent` tries, in order (first success wins):

1. the normalized strings are equal (``\\boxed{}``/``$`` wrappers, ``\\text{}``, spacing
   commands, currency and unit words, percent signs and thousands separators removed);
2. both are exact numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``) with equal values;
   when the reference is such a number, an answer that still holds an operation
   (``345 * 35``, ``3 + 4``, ``2^{10}``, ``5!``) is not equivalent: the computation was
   asked for, not its expression (scientific notation such as ``1.2 \\times 10^{3}`` counts
   as a number);
3. ``math_verify`` (``parse`` + ``verify``) says they are equal: LaTeX, fractions, roots,
   sets, intervals, equations such as ``x = 3`` against ``3``;
4. sympy: both parse as expressions whose difference simplifies to zero.

Steps 3 and 4 run in a helper process under a hard time limit
(:mod:`vf_math_python.answer_check`): a check that takes longer is killed and raises
:class:`~vf_math_python.answer_check.AnswerCheckTimeout`. Anything that cannot be read is
"not equivalent"; nothing else here raises for model output. Answers longer than
``MAX_ANSWER_CHARS`` are not equivalent to anything, and inputs that could make sympy run
away (exponent towers, huge exponents, long strings) skip the symbolic steps.
"""

from __future__ import annotations

import logging
import re
import threading
from fractions import Fraction
from typing import Any

from verifiers.utils.data_utils import extract_boxed_answer

logger = logging.getLogger(__name__)

MAX_SYMBOLIC_CHARS = 300
#: Longer answers (after ``\\boxed{}`` extraction) are never equivalent: no reference is
#: this long, and it keeps the string steps cheap on adversarial input.
MAX_ANSWER_CHARS = 2000
_SYMBOLIC_TIMEOUT_S = 5

_SPACING = re.compile(r"\\[,;:!]|\\quad|\\qquad|~|\\ ")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox|textrm)\s*\{([^{}]*)\}")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)\s*")
_THOUSANDS = re.compile(r"(?<=\d)(?:,|\{,\})(?=\d{3}(?:\D|$))")
_CURRENCY = re.compile(r"\\\$|\$|US\$|USD|€|£|¥|\\euro")
_PERCENT = re.compile(r"\\%|%|\bpercent\b", re.IGNORECASE)
_UNIT_WORDS = re.compile(r"^\s*([-+−]?\s*\d[\d.,/]*)\s*[A-Za-z][A-Za-z .'/-]*$")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_ANSWER_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", re.IGNORECASE)
_EXPONENT = re.compile(r"(?:\^|\*\*)\s*\{?\s*\(?\s*(\d+)")
_NESTED_POWER = re.compile(r"(?:\^|\*\*)\s*\{[^{}]*(?:\^|\*\*)|(?:\^|\*\*)[^\^*]*(?:\^|\*\*)\s*\d")
#: An operation between operands: ``3 + 4``, ``345 * 35``, ``2^{10}``, ``6 \\times 7``, ``5!``.
_OPERATION = re.compile(
    r"(?<=[\d)}.])\s*(?:\*\*|[-+*×·÷^]|\\times|\\cdot|\\div|\\ast)\s*(?=[\d({\\.])"
    r"|\d\s*!")
_SCIENTIFIC = re.compile(
    r"[-+]?\d+(?:\.\d+)?\s*(?:\\times|\\cdot|[*×·])\s*10\s*(?:\^|\*\*)\s*"
    r"\{?\s*[-+]?\d+\s*\}?")
_EQUATION_LHS = re.compile(r"^[A-Za-z]\s*=\s*")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def normalize_answer(text: Any) -> str:
    """A canonical string for an answer: wrappers, units, currency, percent and thousands
    separators removed, whitespace collapsed. ``None`` becomes ``""``."""
    if text is None:
        return ""
    s = str(text).strip()
    boxed = extract_boxed_answer(s) if ("\\boxed" in s or "\\fbox" in s) else None
    if boxed is not None:
        s = boxed
    if len(s) > MAX_ANSWER_CHARS:
        return s  # too long to be an answer (see answers_equivalent); not worth the regexes
    s = s.replace("−", "-").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SPACING.sub(" ", s)
    for _ in range(3):
        s = _TEXT.sub(r"\1", s)
    s = _LEFT_RIGHT.sub("", s)
    s = _ANSWER_PREFIX.sub("", s.strip())
    s = _DEGREES.sub("", s)
    s = s.strip().strip("$").strip()
    s = _CURRENCY.sub("", s)
    s = _PERCENT.sub("", s)
    s = _THOUSANDS.sub("", s)
    unit = _UNIT_WORDS.match(s)
    if unit:  # "18 dollars", "5 cm", "12 apples"
        s = unit.group(1)
    s = s.strip().rstrip(".").strip()
    s = re.sub(r"\s+", " ", s)
    s = re.sub(r"(?<=[\d)}])\s+(?=[\d(])", " ", s)
    return s


def to_fraction(text: str) -> Fraction | None:
    """The exact value of an integer, decimal, ``a/b`` or ``\\frac{a}{b}`` string, else None."""
    s = text.replace(" ", "")
    frac = re.fullmatch(r"([-+]?)\\frac\{([-+]?\d+)\}\{([-+]?\d+)\}", s) or re.fullmatch(
        r"([-+]?)\\frac(\d)(\d)", s
    )
    try:
        if frac:
            sign = -1 if frac.group(1) == "-" else 1
            return sign * Fraction(int(frac.group(2)), int(frac.group(3)))
        if re.fullmatch(r"[-+]?\d+/[-+]?\d+", s):
            num, den = s.split("/")
            return Fraction(int(num), int(den))
        if re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?", s):
            return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def is_unevaluated(text: str) -> bool:
    """Does the normalized answer ``text`` still hold an arithmetic operation (``345 * 35``)
    rather than a value? A leading ``x =`` and scientific notation do not count."""
    s = _EQUATION_LHS.sub("", text.strip())
    if _SCIENTIFIC.fullmatch(s):
        return False
    return bool(_OPERATION.search(s))


def is_risky(text: str) -> bool:
    """Could symbolic evaluation of ``text`` take forever (huge or nested powers, factorial
    of big numbers, very long input)?"""
    if len(text) > MAX_SYMBOLIC_CHARS:
        return True
    if _NESTED_POWER.search(text):
        return True
    if any(int(m.group(1)) > 10_000 for m in _EXPONENT.finditer(text)):
        return True
    return bool(re.search(r"\d{4,}\s*!", text))


def answers_equivalent(predicted: Any, reference: Any, checker: Any = None) -> bool:
    """True when ``predicted`` and ``reference`` denote the same mathematical answer.

    ``checker``: the :class:`~vf_math_python.answer_check.SymbolicChecker` for steps 3-4
    (default: the process-wide one, 3 s per check). Raises
    :class:`~vf_math_python.answer_check.AnswerCheckTimeout` when it runs out of time.
    """
    if predicted is None or reference is None:
        return False
    pred, ref = normalize_answer(predicted), normalize_answer(reference)
    if len(pred) > MAX_ANSWER_CHARS or len(ref) > MAX_ANSWER_CHARS:
        return False
    if not pred or not ref:
        return False
    if pred == ref:
        return True
    pred_value, ref_value = to_fraction(pred), to_fraction(ref)
    if ref_value is not None and pred_value is None and is_unevaluated(pred):
        return False  # "\\boxed{345 * 35}" for 12075: the expression, not the number
    if pred_value is not None and ref_value is not None:
        return pred_value == ref_value
    if is_risky(pred) or is_risky(ref):
        return False
    if checker is None:
        from vf_math_python.answer_check import default_checker

        checker = default_checker()
    return bool(checker.equivalent(pred, ref))


def _timeout() -> int | None:
    """math_verify's timeouts use SIGALRM, which only works in the main thread."""
    return _SYMBOLIC_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def math_verify_equivalent(predicted: str, reference: str) -> bool:
    """``math_verify.verify`` on both answers, each wrapped in ``\\boxed{}``."""
    try:
        from math_verify import parse, verify
    except ImportError:  # optional at run time: fall back to sympy alone
        return False
    timeout = _timeout()
    try:
        gold = parse(f"\\boxed{{{reference}}}", parsing_timeout=timeout)
        target = parse(f"\\boxed{{{predicted}}}", parsing_timeout=timeout)
        if not gold or not target:
            return False
        return bool(verify(gold, target, timeout_seconds=timeout))
    except Exception as exc:  # unreadable model output is simply "not equal"
        logger.debug("math_verify failed on %r vs %r: %r", predicted, reference, exc)
        return False


def latex_to_sympy_text(text: str) -> str:
    """A rough LaTeX -> sympy-syntax rewrite for simple expressions."""
    s = text
    for _ in range(5):
        s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\s*\{([^{}]*)\}", r"sqrt(\1)", s)
    s = re.sub(r"\\sqrt\s*(\d+|[a-zA-Z])", r"sqrt(\1)", s)
    s = s.replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    s = s.replace("\\pi", "pi").replace("^", "**").replace("{", "(").replace("}", ")")
    return s.replace("\\", "")


_SAFE_CHARS = re.compile(r"[0-9A-Za-z+\-*/().,\s]*")
_SAFE_NAMES = frozenset({"sqrt", "pi", "E", "I", "exp", "log", "ln", "sin", "cos", "tan"})


def is_safe_expression(text: str) -> bool:
    """Only digits, operators, brackets and known function names or one-letter variables:
    sympy's ``parse_expr`` runs ``eval``, so nothing else may reach it."""
    if not _SAFE_CHARS.fullmatch(text):
        return False
    names = re.findall(r"[A-Za-z]+", text)
    return all(len(name) == 1 or name in _SAFE_NAMES for name in names)


def sympy_equivalent(predicted: str, reference: str) -> bool:
    """Does ``simplify(predicted - reference)`` come out as zero? Only for inputs that pass
    :func:`is_safe_expression` after the LaTeX rewrite (``parse_expr`` uses ``eval``)."""
    texts = latex_to_sympy_text(predicted), latex_to_sympy_text(reference)
    if not all(is_safe_expression(t) for t in texts) or any(is_risky(t) for t in texts):
        return False
    try:
        import sympy
        from sympy.parsing.sympy_parser import (
            convert_xor,
            implicit_multiplication_application,
            parse_expr,
            standard_transformations,
        )
    except ImportError:
        return False
    transformations = (*standard_transformations, implicit_multiplication_application,
                       convert_xor)
    try:
        a = parse_expr(texts[0], transformations=transformations, evaluate=True)
        b = parse_expr(texts[1], transformations=transformations, evaluate=True)
        if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
            return False
        return bool(sympy.simplify(a - b) == 0)
    except Exception as exc:  # SyntaxError, TypeError, TokenError, ...: not comparable
        logger.debug("sympy could not compare %r and %r: %r", predicted, reference, exc)
        return False


def last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands separators removed), or None."""
    matches = _NUMBER.findall(_THOUSANDS.sub("", text or ""))
    return matches[-1] if matches else None
