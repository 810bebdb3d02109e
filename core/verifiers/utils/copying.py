"""A fast deep copy for JSON-like data (messages, prompts): dicts, lists and atoms are
copied directly, anything else goes through :func:`copy.deepcopy`. About four times faster
than ``copy.deepcopy`` on chat messages; shared sub-objects are copied once per place
they appear (messages do not share them)."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["json_copy"]

_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def json_copy(value: Any) -> Any:
    """A deep copy of ``value``, as ``copy.deepcopy`` makes it for JSON-like data."""
    try:
        return _copy(value)
    except RecursionError:  # a container that holds itself: deepcopy keeps the cycle
        return copy.deepcopy(value)
