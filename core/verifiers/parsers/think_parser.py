"""ThinkParser: ``<think>...</think>`` followed by the answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from verifiers.parsers.parser import Parser, message_text
from verifiers.types import Messages

_THINK_BLOCK = re.compile(r"^\s*<think>.*?</think>\s*(\S.*)$", re.DOTALL)


class ThinkParser(Parser):
    """Reads the text after the closing ``</think>`` tag and applies ``extract_fn`` to it.

    Text with an unclosed ``<think>`` parses to ``None``; text without any think block is
    passed to ``extract_fn`` whole (some models skip thinking on easy prompts).
    """

    def __init__(self, extract_fn: Callable[[str], Any] | None = None) -> None:
        super().__init__(extract_fn)

    def parse(self, text: str) -> Any:
        if not isinstance(text, str):
            return None
        if "</think>" in text:
            text = text.rsplit("</think>", 1)[1]
        elif "<think>" in text:
            return None
        return super().parse(text.strip())

    def get_format_reward_func(self) -> Callable[..., float]:
        """1.0 per assistant turn that is exactly one think block followed by an answer."""

        def format_reward(completion: Messages, **kwargs: Any) -> float:
            messages = self.get_assistant_messages(completion)
            if not messages:
                return 0.0
            good = 0
            for message in messages:
                text = message_text(message)
                ok = (
                    text.count("<think>") == 1
                    and text.count("</think>") == 1
                    and _THINK_BLOCK.match(text) is not None
                )
                good += ok
            return good / len(messages)

        return format_reward
