"""The base parser: the identity on the last assistant message, with a pluggable extractor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from verifiers.types import ChatMessage, Messages

logger = logging.getLogger(__name__)


def message_text(message: ChatMessage) -> str:
    """The text of a chat message, whatever shape its ``content`` has (str, parts, None)."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict)
        )
    return str(content)


class Parser:
    """Extracts an answer from model output.

    ``extract_fn`` maps the text of the last assistant message to the answer; the default
    returns the text unchanged. A parser never raises on model output: anything it cannot
    read parses to ``None`` (and scores low in format rewards).
    """

    def __init__(self, extract_fn: Callable[[str], Any] | None = None) -> None:
        self.extract_fn = extract_fn or (lambda text: text)

    # -- text ------------------------------------------------------------------------------
    def parse(self, text: str) -> Any:
        """Parse one piece of text. Returns ``None`` when ``extract_fn`` cannot read it."""
        if not isinstance(text, str):
            return None
        try:
            return self.extract_fn(text)
        except Exception as exc:  # model output must never crash scoring
            logger.debug("extract_fn failed on model output: %r", exc)
            return None

    # -- messages --------------------------------------------------------------------------
    def get_assistant_messages(self, completion: Messages) -> list[ChatMessage]:
        if isinstance(completion, str):
            return [{"role": "assistant", "content": completion}]
        return [m for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]

    def parse_answer(self, completion: Messages) -> str | None:
        """The answer in a completion: the parsed last assistant message (or the string)."""
        if isinstance(completion, str):
            parsed = self.parse(completion)
        else:
            messages = self.get_assistant_messages(completion)
            if not messages:
                return None
            parsed = self.parse(message_text(messages[-1]))
        return None if parsed is None else str(parsed)

    def get_format_reward_func(self) -> Callable[..., float]:
        """A reward function for format compliance: 1.0 when every assistant turn parses."""

        def format_reward(completion: Messages, **kwargs: Any) -> float:
            messages = self.get_assistant_messages(completion)
            if not messages:
                return 0.0
            ok = [self.parse(message_text(m)) not in (None, "") for m in messages]
            return sum(ok) / len(ok)

        return format_reward
