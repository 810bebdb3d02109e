"""ThinkParser: ``<think>...</think>`` followed by the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from verifiers.parsers.parser import Parser, content_text, message_text
from verifiers.types import Messages


def follows_think_format(text: str) -> bool:
    """One ``<think>`` block at the start, closed once, with something after it."""
    stripped = text.strip()
    return (
        stripped.startswith("<think>")
        and text.count("<think>") == 1
        and text.count("</think>") == 1
        and len(text.rsplit("</think>", 1)[-1]) > 0
    )


class ThinkParser(Parser):
    """Reads the text after the last ``</think>`` and applies ``extract_fn`` to it.

    Text without a ``</think>`` parses as ``extract_fn("")`` (verifiers 0.1.x behaviour: no
    answer is read from unfinished or missing reasoning). Linear in the text's length.
    """

    def __init__(self, extract_fn: Callable[[str], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(extract_fn, **kwargs)

    def parse(self, text: str) -> Any:
        if not isinstance(text, str):
            text = content_text(text)
        answer = text.rsplit("</think>", 1)[1].strip() if "</think>" in text else ""
        return super().parse(answer)

    def get_format_reward_func(self) -> Callable[..., float]:
        """Per assistant turn, 1.0 when it starts with one ``<think>`` block, closed once,
        followed by an answer; averaged over turns (0.0 without assistant turns)."""

        def format_reward(completion: Messages = "", **kwargs: Any) -> float:
            messages = self.get_assistant_messages(completion)
            if not messages:
                return 0.0
            return sum(follows_think_format(message_text(m)) for m in messages) / len(messages)

        format_reward.__vf_bounded__ = True  # type: ignore[attr-defined]
        return format_reward
