"""The reply format: an optional ``<think>`` block, then ``<guess>WORD</guess>``."""

from __future__ import annotations

from typing import Any

import verifiers as vf


def make_parser(use_think: bool) -> vf.XMLParser:
    """``XMLParser(["think", "guess"])`` with thinking, ``XMLParser(["guess"])`` without;
    the answer field is ``guess``."""
    fields = ["think", "guess"] if use_think else ["guess"]
    return vf.XMLParser(fields, answer_field="guess")


def reply_format(parser: vf.XMLParser) -> str:
    """The format shown in the system prompt, e.g. ``<guess>\\nWORD\\n</guess>``."""
    example = {"think": "your reasoning", "guess": "WORD"}
    return parser.format(**{f: example.get(f, "...") for f in parser.get_fields()})


def read_guess(parser: Any, text: str) -> str | None:
    """The guess in one assistant message: the content of its last ``<guess>`` tag, or
    ``None`` when there is none. Never raises. With a plain ``vf.Parser`` (no fields) the
    parsed text itself is the guess."""
    parsed = parser.parse(text)
    field = getattr(parser, "answer_field", None)
    if field is not None and not isinstance(parsed, str):
        value = getattr(parsed, field, None)
        return value if isinstance(value, str) else None
    return parsed if isinstance(parsed, str) else None
