"""Tools as Python functions: their OpenAI schema (signature + docstring, through pydantic)
and the validation of the arguments a model sends before the function runs.

Type hints become JSON schema the way pydantic writes it: ``Enum`` and ``Literal`` give
``enum``, ``TypedDict`` and pydantic models give nested objects, ``Optional[X]`` gives
``anyOf [X, null]``, defaults appear as ``default``. Parameters without a default are
required. A hint pydantic cannot describe (an arbitrary class) is left untyped.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, get_args, get_origin

import pydantic
import typing_extensions


class ToolArgumentError(ValueError):
    """The arguments of a tool call do not fit the tool's signature; the message is written
    for the model that made the call."""


# ------------------------------------------------------------------------------------------
# Docstrings
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# The arguments model: one pydantic model per tool, built once
# ------------------------------------------------------------------------------------------


def _portable(annotation: Any) -> Any:
    """``annotation`` with every ``typing.TypedDict`` rebuilt as a ``typing_extensions``
    one (pydantic needs those before Python 3.12); other hints unchanged."""
    if sys.version_info >= (3, 12):
        return annotation
    if typing.is_typeddict(annotation) and not isinstance(annotation, typing_extensions._TypedDictMeta):  # type: ignore[attr-defined]
        hints = typing.get_type_hints(annotation)
        required = getattr(annotation, "__required_keys__", frozenset(hints))
        fields = {key: (typing_extensions.Required if key in required
                        else typing_extensions.NotRequired)[_portable(hint)]
                  for key, hint in hints.items()}
        rebuilt = typing_extensions.TypedDict(annotation.__name__, fields)  # type: ignore[misc, operator]
        rebuilt.__doc__ = annotation.__doc__
        return rebuilt
    origin, args = get_origin(annotation), get_args(annotation)
    if not args or origin in (typing.Literal, typing_extensions.Literal):
        return annotation
    converted = tuple(_portable(a) for a in args)
    if converted == args:
        return annotation
    if origin in (typing.Union, types.UnionType):
        return typing.Union[converted]  # noqa: UP007
    if origin is typing.Annotated:
        return typing.Annotated[(converted[0], *annotation.__metadata__)]
    try:
        return annotation.copy_with(converted)
    except AttributeError:
        return origin[converted]


def _describable(annotation: Any) -> Any:
    """``annotation`` if pydantic can validate and describe it, else ``Any``."""
    try:
        pydantic.TypeAdapter(annotation).json_schema()
    except Exception:
        return Any
    return annotation


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    """Resolved type hints; where some cannot be resolved (a name defined inside a function,
    under ``from __future__ import annotations``), the others still are."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        pass
    namespace = getattr(inspect.unwrap(func), "__globals__", {})
    hints = {}
    for param in inspect.signature(func).parameters.values():
        annotation = param.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(namespace))
            except Exception:
                continue
        hints[param.name] = annotation
    return hints


def _arguments_model(func: Callable[..., Any]) -> type[pydantic.BaseModel]:
    """The pydantic model of ``func``'s parameters (built once per hashable tool). Fields are
    named ``p0, p1, ...`` with the parameter names as aliases, so any parameter name works
    (``json``, ``model_config``, ``_x``)."""
    try:
        hash(func)
    except TypeError:
        return _build_arguments_model(func)
    return _cached_arguments_model(func)


@functools.cache
def _cached_arguments_model(func: Callable[..., Any]) -> type[pydantic.BaseModel]:
    return _build_arguments_model(func)


def _build_arguments_model(func: Callable[..., Any]) -> type[pydantic.BaseModel]:
    name = getattr(func, "__name__", None) or type(func).__name__
    hints = _hints(func)
    described = _param_docs(inspect.getdoc(func) or "")
    fields: dict[str, Any] = {}
    extra = "forbid"
    for param in inspect.signature(func).parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        annotation = hints.get(param.name, param.annotation)
        if annotation is inspect.Parameter.empty or isinstance(annotation, str):
            annotation = Any
        annotation = _describable(_portable(annotation))
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[f"p{len(fields)}"] = (annotation, pydantic.Field(
            default, alias=param.name, description=described.get(param.name)))
    config = pydantic.ConfigDict(extra=extra, arbitrary_types_allowed=True,  # type: ignore[typeddict-item]
                                 coerce_numbers_to_str=True)
    return pydantic.create_model(f"{name}_arguments", __config__=config, **fields)


# ------------------------------------------------------------------------------------------
# Schema
# ------------------------------------------------------------------------------------------


def _clean(node: Any, defs: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline ``$ref``s (a recursive one stays a ref) and drop pydantic's ``title``s."""
    if isinstance(node, list):
        return [_clean(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        key = ref.removeprefix("#/$defs/")
        if key in seen or key not in defs:
            return node
        merged = {**defs[key], **{k: v for k, v in node.items() if k != "$ref"}}
        return _clean(merged, defs, (*seen, key))
    out = {}
    for key, value in node.items():
        if key == "$defs" or (key == "title" and isinstance(value, str)):
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _clean(sub, defs, seen) for name, sub in value.items()}
        else:
            out[key] = _clean(value, defs, seen)
    return out


def _uses_ref(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_uses_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_uses_ref(v) for v in node)
    return False


def convert_func_to_oai_tool(func: Callable[..., Any]) -> dict[str, Any]:
    """The OpenAI ``tools=[...]`` entry for ``func``: name, description and a JSON schema
    of its parameters from type hints (required = no default) and the docstring."""
    name = getattr(func, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError("Tools must be named functions (not lambdas).")
    raw = _arguments_model(func).model_json_schema()
    defs = raw.get("$defs", {})
    parameters = _clean(raw, defs)
    parameters.pop("additionalProperties", None)
    parameters.setdefault("properties", {})
    parameters["required"] = list(parameters.get("required", []))
    if _uses_ref(parameters):  # recursive types keep their definitions
        parameters["$defs"] = {k: _clean(v, defs, (k,)) for k, v in defs.items()}
    ordered = {"type": "object", "properties": parameters.pop("properties"),
               "required": parameters.pop("required")}
    ordered.update({k: v for k, v in parameters.items() if k != "type"})
    doc = inspect.getdoc(func) or ""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": _summary(doc) or f"Call {name}.",
            "parameters": ordered,
        },
    }


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "arguments"
    if error.get("type") == "missing":
        return f"{where}: missing (required)"
    if error.get("type") == "extra_forbidden":
        return f"{where}: not a parameter of this tool"
    value = repr(error.get("input"))
    value = value if len(value) <= 80 else value[:77] + "..."
    return f"{where}: {error.get('msg')} (got {value})"


def validate_tool_arguments(func: Callable[..., Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` checked and coerced against ``func``'s type hints (``"3"`` to ``3`` for
    an ``int``, a string to its ``Enum`` member, a dict to a pydantic model); only the
    arguments given are returned, so the function's own defaults apply to the rest.
    Raises :class:`ToolArgumentError` naming every problem and the expected parameters."""
    name = getattr(func, "__name__", None) or type(func).__name__
    model = _arguments_model(func)
    if not isinstance(arguments, Mapping):
        raise ToolArgumentError(
            f"bad arguments for {name}: expected a JSON object, got {type(arguments).__name__}.")
    try:
        parsed = model.model_validate(dict(arguments))
    except pydantic.ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors(include_url=False))
        expected = ", ".join(
            f"{info.alias}{'' if info.is_required() else ' (optional)'}"
            for info in model.model_fields.values()) or "none"
        raise ToolArgumentError(
            f"bad arguments for {name}: {problems}. Parameters: {expected}.") from None
    given = {model.model_fields[key].alias or key: getattr(parsed, key)
             for key in parsed.model_fields_set if key in model.model_fields}
    given.update(parsed.model_extra or {})
    return given


__all__ = ["ToolArgumentError", "convert_func_to_oai_tool", "validate_tool_arguments"]
