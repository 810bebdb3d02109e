"""Tool calls in generated text: Hermes/Qwen-style ``<tool_call>`` blocks parsed into OpenAI
tool calls (what vLLM's ``hermes`` tool parser returns)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from verifiers.utils import openai_wire as wire

#: One ``<tool_call>`` block; an unclosed block at the end of the text counts (stopped at eos).
TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Split Hermes/Qwen-style ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``
    blocks out of ``text``: ``(remaining content, OpenAI tool calls)``. Blocks that are not
    a JSON object with a ``name`` stay in the content, as vLLM's hermes parser does."""
    calls: list[dict[str, Any]] = []
    pieces: list[str] = []
    position = 0
    for match in TOOL_CALL_RE.finditer(text):
        try:
            call = json.loads(match.group(1))
        except ValueError:
            continue
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            continue
        arguments = call.get("arguments", call.get("parameters", {}))
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(wire.tool_call(f"call_{uuid.uuid4().hex[:24]}", call["name"], arguments))
        pieces.append(text[position:match.start()])
        position = match.end()
    if not calls:
        return text, []
    pieces.append(text[position:])
    return "".join(pieces).strip(), calls


__all__ = ["TOOL_CALL_RE", "parse_tool_calls"]
