"""vf-eval's sample panels: a rollout's completion as text, with each tool call's name and
arguments and each tool's answer, clipped per message so a long one cannot hide the rest."""

from __future__ import annotations

import json
from typing import Any

MESSAGE_LIMIT = 600
ARGUMENTS_LIMIT = 300


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def _arguments(raw: Any) -> str:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return raw  # shown as the model sent it
    return json.dumps(raw, ensure_ascii=False)


def completion_text(completion: Any) -> str:
    """The completion as panel text: ``[role] content`` per message, and one
    ``→ tool call NAME {arguments}`` line per tool call."""
    if not isinstance(completion, list):
        return _clip(str(completion or ""), MESSAGE_LIMIT)
    lines = []
    for message in completion:
        if not isinstance(message, dict):
            continue
        content = message.get("content") or ""
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        lines.append(f"[{message.get('role')}] {_clip(str(content), MESSAGE_LIMIT)}".rstrip())
        for call in message.get("tool_calls") or []:
            function = (call.get("function") if isinstance(call, dict) else None) or {}
            arguments = _clip(_arguments(function.get("arguments")), ARGUMENTS_LIMIT)
            lines.append(f"  → tool call {function.get('name', '?')} {arguments}")
    return "\n".join(lines)


__all__ = ["completion_text"]
