"""XMLParser: fields written as ``<tag>...</tag>`` blocks, e.g. reasoning then answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from verifiers.parsers.parser import Parser, message_text
from verifiers.types import Messages


class XMLParser(Parser):
    """Parses ``<field>...</field>`` blocks.

    ``fields`` lists the expected tags in order. A field may be a tuple of alternative tag
    names; the first one is canonical: ``XMLParser(["think", ("code", "python")])`` accepts
    ``<python>...</python>`` and reports it as ``code``. When a tag occurs several times the
    last occurrence wins (models tend to restate their final answer last).
    """

    def __init__(
        self,
        fields: Sequence[str | tuple[str, ...]] = ("reasoning", "answer"),
        answer_field: str = "answer",
    ) -> None:
        super().__init__()
        if isinstance(fields, str):
            raise TypeError(
                f"XMLParser(fields=...) takes a list of tag names, got the string {fields!r}; "
                f"write XMLParser([{fields!r}])."
            )
        self._fields: list[tuple[str, tuple[str, ...]]] = []
        for field in fields:
            names = (field,) if isinstance(field, str) else tuple(field)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"Invalid XMLParser field {field!r}: use a tag name or a tuple.")
            self._fields.append((names[0], names))
        canonical = [c for c, _ in self._fields]
        if len(set(canonical)) != len(canonical):
            raise ValueError(f"Duplicate XMLParser fields: {canonical}")
        if answer_field not in canonical:
            raise ValueError(
                f"answer_field={answer_field!r} is not one of the fields {canonical}."
            )
        self.answer_field = answer_field
        self._patterns = {
            name: re.compile(rf"<{re.escape(name)}>\s*(.*?)\s*</{re.escape(name)}>", re.DOTALL)
            for _, names in self._fields
            for name in names
        }

    def get_fields(self) -> list[str]:
        return [canonical for canonical, _ in self._fields]

    def parse(self, text: str, strip: bool = True) -> SimpleNamespace:  # type: ignore[override]
        """A namespace with one attribute per canonical field (``None`` where absent)."""
        result = SimpleNamespace(**{c: None for c, _ in self._fields})
        if not isinstance(text, str):
            return result
        for canonical, names in self._fields:
            found: tuple[int, str] | None = None
            for name in names:
                for match in self._patterns[name].finditer(text):
                    value = match.group(1).strip() if strip else match.group(1)
                    if found is None or match.start() >= found[0]:
                        found = (match.start(), value)
            if found is not None:
                setattr(result, canonical, found[1])
        return result

    def parse_answer(self, completion: Messages) -> str | None:
        """The ``answer_field`` of the last assistant message that has one."""
        if isinstance(completion, str):
            return getattr(self.parse(completion), self.answer_field)
        for message in reversed(self.get_assistant_messages(completion)):
            value = getattr(self.parse(message_text(message)), self.answer_field)
            if value is not None:
                return value
        return None

    def format(self, **kwargs: Any) -> str:
        """Render fields as tags: ``format(reasoning="...", answer="4")``."""
        parts = []
        for canonical, names in self._fields:
            for name in names:
                if name in kwargs and kwargs[name] is not None:
                    parts.append(f"<{canonical}>\n{kwargs[name]}\n</{canonical}>")
                    break
        unknown = set(kwargs) - {n for _, names in self._fields for n in names}
        if unknown:
            raise ValueError(f"Unknown fields {sorted(unknown)}; expected {self.get_fields()}.")
        return "\n".join(parts)

    def get_format_str(self) -> str:
        """A description of the expected format, for system prompts."""
        lines = []
        for canonical, names in self._fields:
            tag = canonical if len(names) == 1 else " | ".join(names)
            lines.append(f"<{tag}>\n...\n</{tag}>")
        return "\n".join(lines)

    def get_format_reward_func(self) -> Callable[..., float]:
        """Partial credit for format: per assistant turn, the share of fields present
        (0.8 of the score) plus 0.2 when the turn starts with the first tag and ends with the
        closing tag of the last field it uses; averaged over the assistant turns."""

        def format_reward(completion: Messages, **kwargs: Any) -> float:
            messages = self.get_assistant_messages(completion)
            if not messages:
                return 0.0
            scores = []
            for message in messages:
                text = message_text(message).strip()
                parsed = self.parse(text)
                present = [c for c, _ in self._fields if getattr(parsed, c) is not None]
                score = 0.8 * len(present) / len(self._fields)
                first_names = self._fields[0][1]
                starts = any(text.startswith(f"<{n}>") for n in first_names)
                ends = bool(re.search(r"</[A-Za-z_][\w\-]*>\s*$", text))
                if present and starts and ends:
                    score += 0.2
                scores.append(score)
            return sum(scores) / len(scores)

        return format_reward
