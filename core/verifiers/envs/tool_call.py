"""Tool calls as they are kept in completions: dicts that also read like openai's objects.

verifiers 0.1.x stored the openai client's ``ChatCompletionMessageToolCall`` objects in
``completion[i]["tool_calls"]``, so reward functions written for it read
``call.function.name`` and ``json.loads(call.function.arguments)``. Ours are plain dicts in
the OpenAI wire format (``call["function"]["name"]``; they serialise to JSON and Arrow as
they are) that answer those attribute reads too, and ``model_dump()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class _AttrDict(dict):
    """A dict whose keys read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no {name!r}; keys: {', '.join(self)}."
            ) from None

    def model_dump(self, **_: Any) -> dict[str, Any]:
        """A plain-dict copy (the openai objects' method of that name)."""
        return plain(self)


class ToolCallFunction(_AttrDict):
    """``{"name": ..., "arguments": <JSON string>}``."""


class ToolCall(_AttrDict):
    """``{"id": ..., "type": "function", "function": {"name": ..., "arguments": ...}}``."""

    @classmethod
    def from_any(cls, call: Any) -> ToolCall:
        """From an openai object, a dict in the wire format, or a ``ToolCall``."""
        if isinstance(call, Mapping):
            function = call.get("function") or {}
            call_id, kind = call.get("id"), call.get("type", "function")
        else:
            function = getattr(call, "function", None)
            call_id, kind = getattr(call, "id", None), getattr(call, "type", "function")
        if isinstance(function, Mapping):
            name, arguments = function.get("name"), function.get("arguments")
        else:
            name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
        return cls(id=call_id, type=kind or "function",
                   function=ToolCallFunction(name=name, arguments=arguments))


def tool_calls_of(message: Any) -> list[ToolCall]:
    """The tool calls of an assistant message (dict or openai object), as ``ToolCall``s."""
    calls = message.get("tool_calls") if isinstance(message, Mapping) else getattr(
        message, "tool_calls", None)
    return [ToolCall.from_any(c) for c in calls or []]


def plain(value: Any) -> Any:
    """``value`` with every ``ToolCall`` (and openai model object) turned into plain dicts
    and lists, e.g. before a chat template renders messages."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "model_dump") and not isinstance(value, _AttrDict):
        return plain(value.model_dump())
    return value


def plain_messages(messages: Iterable[Any] | str) -> Any:
    """Messages with plain-dict tool calls (strings pass through)."""
    if isinstance(messages, str):
        return messages
    return [plain(m) for m in messages]
