"""Ready-made tools for ``ToolEnv`` (verifiers 0.1.x's ``verifiers.utils.tools``).

- :func:`calculator`: one arithmetic expression, evaluated from its syntax tree (no
  ``eval``).
- :func:`python`: a notebook-like cell run in vf-math-python's sandbox (a separate,
  restricted process: see that package). Without vf-math-python installed it refuses
  with the install command; model-written code never runs unisolated.

verifiers 0.1.x's web tools (``search``, ``search_ddg``, ``ask``) called paid or
third-party web services and are not provided: write a tool for the service you use.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_EXPONENT = 10_000


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError(f"exponent {right} is too large (the limit is {_MAX_EXPONENT})")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    raise ValueError(f"{ast.unparse(node)!r} is not arithmetic on numbers")


def calculator(expression: str) -> str:
    """Evaluate one arithmetic expression: numbers, + - * / // % ** and parentheses.

    Args:
        expression: the expression, e.g. "3 * (17 + 4)".

    Returns:
        The result, or a message starting with "Error:".
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        return str(_value(tree.body))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as exc:
        return f"Error: {exc}"


def python(code: str) -> str:
    """Run a block of Python like a notebook cell and return what it printed, followed by
    the value of its last expression.

    Args:
        code: the Python code to run.

    Returns:
        The output, or the error the code raised.
    """
    try:
        from vf_math_python.sandbox import PythonSandbox, SandboxLimits
    except ImportError as exc:
        raise ImportError(
            "verifiers.utils.tools.python runs code in vf-math-python's sandbox, which is not "
            "installed: `vf-install math-python` (or pip install -e environments/vf_math_python)."
        ) from exc
    with PythonSandbox(SandboxLimits(timeout=10)) as box:
        result = box.run(code)
    return result.tool_message() if result.ok else result.error_message()


__all__ = ["calculator", "python"]
