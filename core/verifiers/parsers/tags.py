"""Finding ``<tag>...</tag>`` blocks in linear time.

The results are those of the regular expression ``<tag>\\s*(.*?)\\s*</tag>`` (DOTALL) that
verifiers 0.1.x used: the first (or, with ``last=True``, the last non-overlapping) block,
its content stripped of surrounding whitespace. Plain substring search keeps the cost
linear in the text's length whatever the text holds (the regular expression is quadratic
on an opening tag followed by a long run of whitespace, or on many unclosed tags).
"""

from __future__ import annotations

import re
from collections import deque

_PATTERNS: dict[str, re.Pattern[str]] = {}


def _block_pattern(tag: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(tag)
    if pattern is None:
        pattern = _PATTERNS[tag] = re.compile(
            re.escape(f"<{tag}>") + "(.*?)" + re.escape(f"</{tag}>"), re.DOTALL
        )
    return pattern


def find_block(text: str, tag: str, last: bool = False) -> str | None:
    """The stripped content of the first (or last) ``<tag>...</tag>`` block, or ``None``."""
    opening, closing = f"<{tag}>", f"</{tag}>"
    i = text.find(opening)
    if i < 0:
        return None
    if not last:
        begin = i + len(opening)
        j = text.find(closing, begin)
        return None if j < 0 else text[begin:j].strip()
    # Blocks as re.finditer finds them, searched only up to the last closing tag: every
    # opening tag before it is closed, so each match attempt succeeds on its first try and
    # the scan stays linear (an opening tag after it can never be closed).
    end = text.rfind(closing)
    if end < i:
        return None
    matches = deque(_block_pattern(tag).finditer(text, i, end + len(closing)), maxlen=1)
    return matches[0].group(1).strip() if matches else None


def has_tag(text: str, tag: str) -> bool:
    """Whether ``<tag>`` or ``</tag>`` occurs in the text."""
    return f"<{tag}>" in text or f"</{tag}>" in text
