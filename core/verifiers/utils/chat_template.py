"""Chat templates that drop tool calls.

Many small models' chat templates (SmolLM2's, Llama 2-style ones) render only ``role`` and
``content``: an assistant message's ``tool_calls`` vanish, so on the next turn the model
sees an empty assistant turn before the tool's reply instead of the call it wrote. For such
templates, :func:`tool_calls_as_text` writes each call back into the content in the
Hermes/Qwen form the model wrote and the in-process engine parses::

    <tool_call>{"name": "python", "arguments": {"code": "print(2 + 2)"}}</tool_call>

Templates that render tool calls themselves (Qwen2.5's, Llama 3.1's, Hermes') are left
alone; which kind a template is gets found out once per template by rendering a probe call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from verifiers.envs.tool_call import ToolCall

_PROBE_NAME = "vf_probe_tool_7c1e"
_PROBE_MESSAGES = [
    {"role": "user", "content": "probe"},
    {"role": "assistant", "content": "", "tool_calls": [{
        "id": "call_probe", "type": "function",
        "function": {"name": _PROBE_NAME, "arguments": '{"x": 1}'},
    }]},
    {"role": "tool", "tool_call_id": "call_probe", "content": "1"},
]
_renders: dict[str, bool] = {}
_lock = threading.Lock()


def renders_tool_calls(tokenizer: Any) -> bool:
    """Does ``tokenizer``'s chat template show an assistant message's ``tool_calls``? A
    template that fails on such a message counts as not showing them."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return True  # no template (or a dict of named ones): nothing to decide here
    with _lock:
        known = _renders.get(template)
    if known is None:
        try:
            text = tokenizer.apply_chat_template(_PROBE_MESSAGES, tokenize=False)
            known = _PROBE_NAME in str(text)
        except Exception:
            known = False
        with _lock:
            _renders[template] = known
    return known


def tool_call_text(call: Any) -> str:
    """One OpenAI tool call (dict or openai object) as a ``<tool_call>`` block."""
    function = ToolCall.from_any(call).function
    name, arguments = function.name, function.arguments
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass  # not JSON: shown as the string the model sent
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>{body}</tool_call>"


def tool_calls_as_text(messages: Sequence[Mapping[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """``messages`` (plain dicts) ready for ``tokenizer``'s chat template: when the template
    drops tool calls, each assistant message's calls are written into its content (after any
    text, one ``<tool_call>`` block per call) and ``tool_calls`` removed. Otherwise the
    messages come back as they are (copied)."""
    out = [dict(m) for m in messages]
    if not any(m.get("tool_calls") for m in out) or renders_tool_calls(tokenizer):
        return out
    for message in out:
        calls = message.pop("tool_calls", None)
        if not calls:
            continue
        text = message.get("content") or ""
        if not isinstance(text, str):  # content parts: text parts joined
            text = "".join(p.get("text", "") for p in text if isinstance(p, Mapping))
        blocks = "".join(tool_call_text(c) for c in calls)
        message["content"] = f"{text}\n{blocks}" if text.strip() else blocks
    return out


__all__ = ["renders_tool_calls", "tool_call_text", "tool_calls_as_text"]
