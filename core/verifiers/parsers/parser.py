"""The base parser: the identity on the last message, with a pluggable extractor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from verifiers.types import ChatMessage, Messages

logger = logging.getLogger(__name__)


def message_text(message: Any) -> str:
    """The text of a chat message, whatever shape its ``content`` has: a string, a list of
    content parts (their text parts joined; images and other parts skipped), ``None``."""
    if isinstance(message, dict):
        content = message.get("content")
    else:
        content = getattr(message, "content", message)
    return content_text(content)


def content_text(content: Any) -> str:
    """The text of a message's ``content`` (a string, content parts or ``None``)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):  # content parts: [{"type": "text", "text": ...}, ...]
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(getattr(part, "text", None), str):
                texts.append(part.text)
        return "".join(texts)
    return str(content)


def _role(message: Any) -> Any:
    if isinstance(message, dict):
        return message.get("role")
    return getattr(message, "role", None)


class Parser:
    """Extracts an answer from model output.

    ``extract_fn`` maps text to the answer; the default returns the text unchanged. A parser
    never raises on model output: when ``extract_fn`` fails the text parses to ``None``.
    Extra keyword arguments are kept as attributes (verifiers 0.1.x behaviour), for
    subclasses that take their own settings.
    """

    def __init__(self, extract_fn: Callable[[str], Any] | None = None, **kwargs: Any) -> None:
        self.logger = logging.getLogger(f"verifiers.parsers.{type(self).__name__}")
        self.extract_fn = extract_fn or (lambda text: text)
        for key, value in kwargs.items():
            setattr(self, key, value)

    # -- text ------------------------------------------------------------------------------
    def parse(self, text: str) -> Any:
        """Parse one piece of text. Returns ``None`` when ``extract_fn`` cannot read it."""
        if not isinstance(text, str):
            text = content_text(text)
        try:
            return self.extract_fn(text)
        except Exception as exc:  # model output must never crash scoring
            self.logger.debug("extract_fn failed on model output: %r", exc)
            return None

    # -- messages --------------------------------------------------------------------------
    def _messages(self, completion: Messages, role: str) -> list[ChatMessage]:
        if isinstance(completion, str):
            return [{"role": "assistant", "content": completion}] if role == "assistant" else []
        return [m for m in completion or [] if _role(m) == role]

    def get_assistant_messages(self, completion: Messages) -> list[ChatMessage]:
        """The assistant messages of a conversation (a string is one assistant message)."""
        return self._messages(completion, "assistant")

    def get_system_messages(self, completion: Messages) -> list[ChatMessage]:
        return self._messages(completion, "system")

    def get_user_messages(self, completion: Messages) -> list[ChatMessage]:
        return self._messages(completion, "user")

    def get_tool_messages(self, completion: Messages) -> list[ChatMessage]:
        return self._messages(completion, "tool")

    def parse_answer(self, completion: Messages) -> Any:
        """The answer in a completion: the parsed string, or the parsed last assistant
        message (``None`` when there is none)."""
        if isinstance(completion, str):
            return self.parse(completion)
        messages = self.get_assistant_messages(completion)
        if not messages:
            return None
        return self.parse(message_text(messages[-1]))

    def get_format_reward_func(self) -> Callable[..., float]:
        """A format reward; for the base parser it is 1.0 for every completion (verifiers
        0.1.x's documented no-op). ``XMLParser`` and ``ThinkParser`` check their formats."""

        def format_reward(completion: Messages = "", **kwargs: Any) -> float:
            return 1.0

        format_reward.__vf_bounded__ = True  # type: ignore[attr-defined]
        return format_reward
