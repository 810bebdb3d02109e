"""Generated arithmetic problems: seeded, offline, with a difficulty knob.

>>> rows = generate_arithmetic(3, seed=0, difficulty="easy")
>>> rows[0]["question"], rows[0]["answer"], rows[0]["difficulty"]  # doctest: +SKIP
('What is 47 - 8?', '39', 'easy')

A difficulty is an :class:`ArithmeticSpec` (how many digits per number, how many operations,
which operators, parentheses, whether answers may be fractions). ``"easy"``, ``"medium"``
and ``"hard"`` are presets; ``"mixed"`` draws each row's preset at random; a dict of spec
fields makes a custom level. The same ``(seed, split, difficulty)`` always gives the same
rows, and the ``"train"`` and ``"test"`` splits never share an expression.
"""

from __future__ import annotations

import ast
import operator
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from fractions import Fraction
from typing import Any

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_SHOWN = {"+": "+", "-": "-", "*": "×", "/": "÷"}
_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True)
class ArithmeticSpec:
    """One difficulty level.

    Attributes:
        name: the value of the ``difficulty`` column for these rows.
        min_digits, max_digits: digits of each number (chosen uniformly per number).
        digits_per_number: digits of each number in order (``(3, 2)``: a 3-digit number,
            then a 2-digit one); ``num_ops + 1`` entries; replaces min/max_digits.
        num_ops: operations per expression (``num_ops + 1`` numbers).
        ops: the operators to draw from, a string over ``"+-*/"``.
        parentheses: random expression trees (with the brackets they need) rather than
            flat left-to-right chains.
        fractions: allow non-integer answers (written ``p/q`` in lowest terms); otherwise
            every division is exact.
        level: an integer rank (1 = easiest), stored in ``info``.
    """

    name: str
    min_digits: int = 1
    max_digits: int = 2
    num_ops: int = 1
    ops: str = "+-"
    parentheses: bool = False
    fractions: bool = False
    level: int = 0
    digits_per_number: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.digits_per_number is not None:
            if isinstance(self.digits_per_number, (int, str)):
                raise ValueError(f"digits_per_number is a list with one digit count per number, "
                                 f"e.g. [3, 2]; got {self.digits_per_number!r}.")
            object.__setattr__(self, "digits_per_number", tuple(self.digits_per_number))
            if len(self.digits_per_number) != self.num_ops + 1 or not all(
                    isinstance(d, int) and 1 <= d <= 12 for d in self.digits_per_number):
                raise ValueError(f"digits_per_number needs num_ops + 1 = {self.num_ops + 1} "
                                 f"digit counts between 1 and 12, got {self.digits_per_number}.")
        if not 1 <= self.min_digits <= self.max_digits <= 12:
            raise ValueError(f"Need 1 <= min_digits <= max_digits <= 12, got "
                             f"{self.min_digits} and {self.max_digits}.")
        if not 1 <= self.num_ops <= 12:
            raise ValueError(f"num_ops must be between 1 and 12, got {self.num_ops}.")
        if not self.ops or set(self.ops) - set(_OPS):
            raise ValueError(f"ops must be a non-empty string over '+-*/', got {self.ops!r}.")


PRESETS: dict[str, ArithmeticSpec] = {
    "easy": ArithmeticSpec("easy", 1, 2, 1, "+-", level=1),
    "medium": ArithmeticSpec("medium", 1, 3, 2, "+-*", parentheses=True, level=2),
    "hard": ArithmeticSpec("hard", 2, 4, 4, "+-*/", parentheses=True, fractions=True, level=3),
}
MIXED = "mixed"


def resolve_difficulty(difficulty: Any) -> list[ArithmeticSpec]:
    """The specs a ``difficulty`` argument stands for (several for ``"mixed"`` or a list).

    Accepts a preset name, ``"mixed"``/``None`` (all presets), a level number (1-3), an
    :class:`ArithmeticSpec`, a dict of spec fields (a custom level named ``"custom"``
    unless it says otherwise; ``base`` picks the preset it starts from), or a list of these.
    """
    if difficulty is None or difficulty == MIXED:
        return list(PRESETS.values())
    if isinstance(difficulty, ArithmeticSpec):
        return [difficulty]
    if isinstance(difficulty, bool):
        raise TypeError("difficulty must be a name, a level number or a dict, not a bool.")
    if isinstance(difficulty, int):
        by_level = {spec.level: spec for spec in PRESETS.values()}
        if difficulty not in by_level:
            raise ValueError(f"Arithmetic levels are {sorted(by_level)}, got {difficulty}.")
        return [by_level[difficulty]]
    if isinstance(difficulty, str):
        key = difficulty.strip().lower()
        if key not in PRESETS:
            raise ValueError(f"Unknown arithmetic difficulty {difficulty!r}; use one of "
                             f"{[*PRESETS, MIXED]}, a level 1-3, or a dict of "
                             f"{[f.name for f in fields(ArithmeticSpec)]}.")
        return [PRESETS[key]]
    if isinstance(difficulty, Mapping):
        options = dict(difficulty)
        base = PRESETS[str(options.pop("base", "medium"))]
        known = {f.name for f in fields(ArithmeticSpec)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"Unknown arithmetic difficulty fields {sorted(unknown)}; "
                             f"known: {sorted(known)}.")
        options.setdefault("name", "custom")
        return [replace(base, **options)]
    if isinstance(difficulty, Sequence):
        return [spec for item in difficulty for spec in resolve_difficulty(item)]
    raise TypeError(f"Cannot read difficulty {difficulty!r}.")


# --------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------

Node = int | tuple[str, Any, Any]


def _number(rng: random.Random, spec: ArithmeticSpec, position: int = 0) -> int:
    if spec.digits_per_number:
        digits = spec.digits_per_number[position]
    else:
        digits = rng.randint(spec.min_digits, spec.max_digits)
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def _tree(rng: random.Random, spec: ArithmeticSpec, num_ops: int, first: int = 0) -> Node:
    """A random tree over numbers ``first``, ``first + 1``, ... (left to right)."""
    if num_ops == 0:
        return _number(rng, spec, first)
    left_ops = rng.randint(0, num_ops - 1)
    op = rng.choice(spec.ops)
    return (op, _tree(rng, spec, left_ops, first),
            _tree(rng, spec, num_ops - 1 - left_ops, first + left_ops + 1))


def _chain(rng: random.Random, spec: ArithmeticSpec) -> Node:
    """A flat expression ``a op b op c ...``, grouped the way precedence reads it."""
    numbers = [_number(rng, spec, i) for i in range(spec.num_ops + 1)]
    ops = [rng.choice(spec.ops) for _ in range(spec.num_ops)]
    text = str(numbers[0]) + "".join(f" {o} {n}" for o, n in zip(ops, numbers[1:], strict=True))
    return _from_ast(ast.parse(text, mode="eval").body)


def _from_ast(node: ast.AST) -> Node:
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
        return (_AST_OPS[type(node.op)], _from_ast(node.left), _from_ast(node.right))
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    raise ValueError(f"not an arithmetic expression: {ast.dump(node)}")


def evaluate(node: Node) -> Fraction:
    """Exact value of an expression tree (raises ZeroDivisionError)."""
    if isinstance(node, int):
        return Fraction(node)
    op, left, right = node
    return _OPS[op](evaluate(left), evaluate(right))


def evaluate_text(text: str) -> Fraction:
    """Exact value of a rendered expression (``×``/``÷`` or ``*``/``/``), for checking."""
    source = text.replace("×", "*").replace("÷", "/")
    return evaluate(_from_ast(ast.parse(source, mode="eval").body))


def render(node: Node, parent: int = 0, right_side: bool = False) -> str:
    """The expression with only the brackets precedence needs (``a - (b - c)`` keeps them)."""
    if isinstance(node, int):
        return str(node)
    op, left, right = node
    prec = _PRECEDENCE[op]
    text = f"{render(left, prec)} {_SHOWN[op]} {render(right, prec, True)}"
    if prec < parent or (right_side and prec == parent):
        return f"({text})"
    return text


def _divisions_exact(node: Node) -> bool:
    if isinstance(node, int):
        return True
    op, left, right = node
    if op == "/" and evaluate(left) % evaluate(right) != 0:
        return False
    return _divisions_exact(left) and _divisions_exact(right)


def format_fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def make_problem(rng: random.Random, spec: ArithmeticSpec, max_tries: int = 1000) -> dict[str, Any]:
    """One problem row for ``spec``: question, answer, difficulty, info."""
    for _ in range(max_tries):
        node = _tree(rng, spec, spec.num_ops) if spec.parentheses else _chain(rng, spec)
        try:
            value = evaluate(node)
        except ZeroDivisionError:
            continue
        if not spec.fractions and (value.denominator != 1 or not _divisions_exact(node)):
            continue
        expression = render(node)
        question = f"What is {expression}?"
        if spec.fractions:
            question += " Give the exact value: an integer or a fraction p/q in lowest terms."
        return {
            "question": question,
            "answer": format_fraction(value),
            "difficulty": spec.name,
            "info": {"expression": expression, "level": spec.level, **_spec_info(spec)},
        }
    raise RuntimeError(f"Could not generate a valid problem for {spec} in {max_tries} tries; "
                       "allow fractions or add operators other than '/'.")


def _spec_info(spec: ArithmeticSpec) -> dict[str, Any]:
    info = asdict(spec)
    info.pop("name")
    info.pop("level")
    return info


def generate_arithmetic(
    n: int,
    seed: int = 0,
    difficulty: Any = MIXED,
    split: str = "train",
    exclude: set[str] | None = None,
) -> list[dict[str, Any]]:
    """``n`` distinct problems for ``split``, reproducible from ``seed``.

    ``exclude`` holds expressions to avoid (the other split's). Splits use separate random
    streams, and :func:`arithmetic_splits` makes them disjoint.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    specs = resolve_difficulty(difficulty)
    rng = random.Random(f"vf-math-python/arithmetic/{seed}/{split}")
    seen = set(exclude or ())
    rows: list[dict[str, Any]] = []
    misses = 0
    while len(rows) < n:
        spec = specs[len(rows) % len(specs)] if len(specs) > 1 else specs[0]
        row = make_problem(rng, spec)
        if row["info"]["expression"] in seen:
            misses += 1
            if misses > 100 * n + 1000:
                taken = f" ({len(exclude)} are in the other split)" if exclude else ""
                raise RuntimeError(
                    f"Asked for {n} {split} problems, but only {len(rows)} distinct ones were "
                    f"left for this difficulty{taken}; ask for fewer (num_train_examples / "
                    f"num_eval_examples), or make the difficulty harder.")
            continue
        seen.add(row["info"]["expression"])
        rows.append(row)
    rng.shuffle(rows)
    return rows


def arithmetic_splits(
    num_train: int, num_eval: int, seed: int = 0, difficulty: Any = MIXED
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval rows with no expression in common (eval is generated first)."""
    eval_rows = generate_arithmetic(num_eval, seed, difficulty, split="test")
    taken = {row["info"]["expression"] for row in eval_rows}
    train_rows = generate_arithmetic(num_train, seed, difficulty, split="train", exclude=taken)
    return train_rows, eval_rows
