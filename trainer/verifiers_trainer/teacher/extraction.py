"""Reading the student's final answer: ``<solution>...</solution>``, else ``\\boxed{...}``."""

from __future__ import annotations

import re
from typing import Any

from verifiers.utils.data_utils import extract_boxed_answer

_SOLUTION = re.compile(r"<solution>(.*?)</solution>", re.DOTALL | re.IGNORECASE)


def extract_solution(text: Any) -> str:
    """The student's answer in ``text``: the content of the last complete
    ``<solution>...</solution>`` (a ``\\boxed{...}`` inside it is unwrapped); without one, the
    content of the last ``\\boxed{...}`` (braces balanced); else ``""``. Never raises."""
    if not isinstance(text, str):
        return ""
    tagged = _SOLUTION.findall(text)
    if tagged:
        inner = tagged[-1].strip()
        boxed = extract_boxed_answer(inner)
        return boxed if boxed is not None else inner
    boxed = extract_boxed_answer(text)
    return boxed or ""


def message_text(messages: Any) -> str:
    """The text of a completion: a string as is, or the last assistant message's content."""
    if isinstance(messages, str):
        return messages
    for message in reversed(list(messages or [])):
        if message.get("role") == "assistant":
            return str(message.get("content") or "")
    return ""


def question_text(prompt: Any) -> str:
    """The question of a prompt: a string as is, or the last user message's content."""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(list(prompt or [])):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""
