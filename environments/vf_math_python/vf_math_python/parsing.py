"""Reading the final answer: the last ``\\boxed{...}`` of the model's last message."""

from __future__ import annotations

import verifiers as vf
from verifiers.parsers.parser import message_text
from verifiers.types import Messages


def build_parser(use_think: bool = False) -> vf.Parser:
    """A parser whose answer is the content of the last ``\\boxed{}`` (``None`` without one).

    With ``use_think`` the text after ``</think>`` is read (an unclosed ``<think>`` gives
    ``None``), see :class:`verifiers.ThinkParser`.
    """
    if use_think:
        return vf.ThinkParser(extract_fn=vf.extract_boxed_answer)
    return vf.Parser(extract_fn=vf.extract_boxed_answer)


def final_message_text(completion: Messages) -> str:
    """The text of the last assistant message (or the completion string)."""
    if isinstance(completion, str):
        return completion
    for message in reversed(completion):
        if isinstance(message, dict) and message.get("role") == "assistant":
            return message_text(message)
    return ""
