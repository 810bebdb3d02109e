"""OpenAI tool schemas from Python functions (signature + docstring)."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object",
           list: "array", type(None): "null"}


def _json_type(annotation: Any) -> dict[str, Any]:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    origin = get_origin(annotation)
    if origin is Literal:
        values = list(get_args(annotation))
        return {"enum": values, **_json_type(type(values[0]))} if values else {}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        schema = _json_type(options[0]) if len(options) == 1 else {
            "anyOf": [_json_type(o) for o in options]
        }
        return schema
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        args = get_args(annotation)
        item = _json_type(args[0]) if args else {}
        return {"type": "array", **({"items": item} if item else {})}
    if origin is dict:
        return {"type": "object"}
    if annotation in _SIMPLE:
        return {"type": _SIMPLE[annotation]}
    return {}


def _param_docs(doc: str) -> dict[str, str]:
    """Descriptions from a Google-style ``Args:`` section (``name (type): text``)."""
    docs: dict[str, str] = {}
    match = re.search(r"^\s*(Args|Arguments|Parameters)\s*:\s*$", doc, re.MULTILINE)
    if not match:
        return docs
    current = None
    indent = None
    for line in doc[match.end():].splitlines():
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width < indent:
            break
        item = re.match(r"\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)", line)
        if width == indent and item:
            current = item.group(1).lstrip("*")
            docs[current] = item.group(3).strip()
        elif current is not None:
            docs[current] = f"{docs[current]} {line.strip()}".strip()
    return docs


def _summary(doc: str) -> str:
    head = re.split(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Examples?)\s*:",
                    doc, maxsplit=1, flags=re.MULTILINE)[0]
    return " ".join(head.split())


def convert_func_to_oai_tool(func: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI ``tools=[...]`` entry for ``func``: name, description and a JSON schema
    of its parameters from type hints (required = no default) and the docstring."""
    name = getattr(func, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError("Tools must be named functions (not lambdas).")
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    doc = inspect.getdoc(func) or ""
    described = _param_docs(doc)
    properties: dict[str, Any] = {}
    required = []
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        schema = _json_type(hints.get(param.name, param.annotation))
        if param.name in described:
            schema["description"] = described[param.name]
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        elif param.default is not None and isinstance(param.default, str | int | float | bool):
            schema["default"] = param.default
        properties[param.name] = schema
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": _summary(doc) or f"Call {name}.",
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }
