"""TOML in and out for vf-train: command-line values read as TOML literals, and a writer for
the resolved config (``tomllib`` only reads).

The writer covers what configs hold: strings, booleans, integers, floats, dates, lists and
nested tables. ``None`` has no TOML form: keys whose value is ``None`` are left out.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_value(text: str) -> Any:
    """A command-line value as a TOML literal (``20``, ``1e-4``, ``true``, ``[1, 2]``,
    ``"quoted"``, ``{r = 8}``); text that is not one stays a string (``medium``)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` as a TOML document: plain keys first, then one ``[table]`` per nested
    mapping (sub-tables as ``[table.sub]``)."""
    lines: list[str] = []
    _write_table(lines, (), data)
    return "\n".join(lines).strip() + "\n"


def _write_table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    plain = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, Mapping)]
    nested = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (plain or not nested):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for key, value in plain:
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        _write_table(lines, (*path, key), value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + items + "}"
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} as TOML")


__all__ = ["dumps", "parse_value"]
