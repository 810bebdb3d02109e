"""XMLParser: fields written as ``<tag>...</tag>`` blocks, e.g. reasoning then answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from verifiers.parsers.parser import Parser, content_text, message_text
from verifiers.parsers.tags import find_block, has_tag
from verifiers.types import Messages

_BAD_TAG_CHARS = set("<>/ \t\r\n")


class XMLParser(Parser):
    """Parses ``<field>...</field>`` blocks (verifiers 0.1.x's field specification).

    Each field is a tag name, or a tuple of alternative tag names whose first element is the
    canonical name (used by :meth:`format`): ``XMLParser(["think", ("code", "answer")])``.
    :meth:`parse` returns one attribute per allowed tag (``parsed.code`` and
    ``parsed.answer`` both exist, ``None`` when that tag is missing). Any field list is
    accepted, also one without ``answer_field`` (then :meth:`parse_answer` is ``None``) and
    an empty one. Parsing is linear in the text's length.
    """

    def __init__(
        self,
        fields: Sequence[str | tuple[str, ...]] = ("reasoning", "answer"),
        answer_field: str = "answer",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(fields, str):
            raise TypeError(
                f"XMLParser(fields=...) takes a list of tag names, got the string {fields!r}; "
                f"write XMLParser([{fields!r}])."
            )
        self._fields: list[tuple[str, list[str]]] = []
        for field in fields:
            if isinstance(field, str):
                names = [field]
            elif isinstance(field, tuple | list):
                if not field:
                    raise ValueError("An XMLParser field tuple cannot be empty.")
                if not all(isinstance(n, str) for n in field):
                    raise TypeError(f"All alternatives of an XMLParser field must be strings: {field!r}.")
                names = list(field)
            else:
                raise TypeError(
                    f"Each XMLParser field must be a tag name or a tuple of alternatives, got {field!r}."
                )
            for name in names:
                if not name or _BAD_TAG_CHARS & set(name):
                    raise ValueError(
                        f"Invalid XMLParser tag name {name!r}: use a plain name such as 'answer'."
                    )
            if names[0] in self.get_fields():
                raise ValueError(f"Duplicate XMLParser field: {names[0]!r}.")
            self._fields.append((names[0], names))
        self.answer_field = answer_field

    def get_fields(self) -> list[str]:
        """The canonical field names, in order."""
        return [canonical for canonical, _ in self._fields]

    def _tags(self) -> list[str]:
        return [name for _, names in self._fields for name in names]

    def parse(self, text: str, strip: bool = True, last: bool = False) -> SimpleNamespace:  # type: ignore[override]
        """A namespace with one attribute per allowed tag: the content of its first block
        (the last with ``last=True``), stripped of surrounding whitespace, or ``None``.

        ``strip`` is kept for verifiers 0.1.x signatures; 0.1.x's pattern already excluded
        the whitespace around the content, so both values give the same result."""
        if not isinstance(text, str):
            text = content_text(text)
        return SimpleNamespace(**{tag: find_block(text, tag, last) for tag in self._tags()})

    def parse_answer(self, completion: Messages) -> str | None:
        """The ``answer_field`` of the completion: for a string, its last block; for
        messages, the first block of the last assistant message that has one."""
        if isinstance(completion, str):
            return getattr(self.parse(completion, last=True), self.answer_field, None)
        for message in reversed(self.get_assistant_messages(completion)):
            value = getattr(self.parse(message_text(message)), self.answer_field, None)
            if value is not None:
                return value
        return None

    def format(self, **kwargs: Any) -> str:
        """Render every field as a tag block: ``format(reasoning="...", answer="4")``. A field
        may be given by any of its alternative names; a missing field raises."""
        allowed = set(self._tags())
        unknown = set(kwargs) - allowed
        if unknown:
            raise ValueError(f"Unknown fields {sorted(unknown)}; this parser has {self.get_fields()}.")
        parts = []
        for canonical, names in self._fields:
            value = kwargs.get(canonical)
            if value is None:
                value = next((kwargs[n] for n in names if kwargs.get(n) is not None), None)
            if value is None:
                raise ValueError(f"Missing value for field {canonical!r} (allowed names: {names}).")
            parts.append(f"<{canonical}>\n{value}\n</{canonical}>")
        return "\n".join(parts)

    def get_format_str(self) -> str:
        """A description of the expected format, for system prompts."""
        lines = []
        for canonical, names in self._fields:
            if len(names) > 1:
                options = " | ".join(names)
                lines.append(f"<[ {options} ]>\n...\n</[ {options} ]>")
            else:
                lines.append(f"<{canonical}>\n...\n</{canonical}>")
        return "\n".join(lines)

    def format_score(self, text: str) -> float:
        """verifiers 0.1.x's partial credit for one message, in [0, 1]:

        - 0.4 x the share of fields with at least one of their tags present (a closed block,
          or just an opening or closing tag), when any field has a closed block;
        - 0.2 for spacing (0.1.x's check is always met: its stripped and unstripped
          patterns match the same blocks, so every message gets it);
        - 0.2 when the message starts with an opening tag of the first field;
        - 0.2 when it ends with a closing tag of the last field.
        """
        if not self._fields:
            return 0.0  # nothing to check (0.1.x failed here, which scored 0.0)
        parsed = self.parse(text)
        any_block = False
        present = 0
        for _, names in self._fields:
            field_present = False
            for name in names:
                if getattr(parsed, name) is not None:
                    any_block = field_present = True
                elif has_tag(text, name):
                    field_present = True
            present += field_present
        score = 0.2
        if any_block:
            score += 0.4 * present / len(self._fields)
        stripped = text.strip()
        if any(stripped.startswith(f"<{n}>") for n in self._fields[0][1]):
            score += 0.2
        if any(stripped.endswith(f"</{n}>") for n in self._fields[-1][1]):
            score += 0.2
        return score

    def get_format_reward_func(self) -> Callable[..., float]:
        """The mean of :meth:`format_score` over the assistant messages (0.0 without any)."""

        def format_reward(completion: Messages = "", **kwargs: Any) -> float:
            messages = self.get_assistant_messages(completion)
            if not messages:
                return 0.0
            return sum(self.format_score(message_text(m)) for m in messages) / len(messages)

        format_reward.__vf_bounded__ = True  # type: ignore[attr-defined]
        return format_reward
