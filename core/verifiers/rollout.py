"""The rollout record: :class:`Rollout` (one rollout, filled once by the rollout loop) and
:class:`Turn` (what the server returned for one model turn).

Results, saving, vf-eval and the trainer read these records; ``GenerateOutputs``' columns
are views over them. ``Rollout.state`` is the dict environment authors use (the keys
verifiers 0.1.x authors expect); ``turns``, ``timing``, ``usage`` and ``is_truncated`` are
read from (and written to) that state, never copied out of it.

Both records also read as mappings (``record["reward"]``, ``record.get("error")``,
``turn["completion_token_ids"]``), as the plain dicts they replace did.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

_changes = 0  # counts writes to any Rollout (fields and metrics): views re-read only after one


def changes() -> int:
    """How many times a :class:`Rollout`'s fields or metrics were written so far (results'
    columns are read again from their records only when this has moved)."""
    return _changes


class _Metrics(dict):
    """A rollout's metrics: a plain dict that counts its writes (see :func:`changes`)."""

    __slots__ = ()

    def __setitem__(self, key: str, value: float) -> None:
        global _changes
        _changes += 1
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        global _changes
        _changes += 1
        dict.__delitem__(self, key)

    def _changed(self) -> None:
        global _changes
        _changes += 1

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        dict.update(self, *args, **kwargs)

    def pop(self, *args: Any) -> Any:
        self._changed()
        return dict.pop(self, *args)

    def popitem(self) -> Any:
        self._changed()
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._changed()
        return dict.setdefault(self, key, default)

    def clear(self) -> None:
        self._changed()
        dict.clear(self)

    def __ior__(self, other: Any) -> Any:  # type: ignore[misc]
        self._changed()
        return dict.__ior__(self, other)

    def __reduce__(self) -> Any:
        return (_Metrics, (dict(self),))


class _FieldMapping(Mapping[str, Any]):
    """Mapping access to a record's named fields: ``record[name]``, ``.get``, ``in``,
    ``keys()``; assigning ``record[name] = value`` sets that field."""

    __slots__ = ()
    _KEYS: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        if key not in self._KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._KEYS:
            raise KeyError(
                f"{type(self).__name__} has no field {key!r}; its fields are "
                f"{', '.join(self._KEYS)}. Keep other data in the rollout's state or info."
            )
        setattr(self, key, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)

    def __contains__(self, key: object) -> bool:
        return key in self._KEYS

    __hash__ = None  # type: ignore[assignment]


@dataclass(slots=True, eq=False)
class Turn(_FieldMapping):
    """One model turn: the token ids the server sampled from and returned (when it returns
    them, as vLLM does with ``return_token_ids``), their logprobs (when requested), the
    finish reason and the server's token usage."""

    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    @classmethod
    def from_mapping(cls, turn: Any) -> Turn:
        """A :class:`Turn` from a turn dict (as ``turn_record`` returns); a Turn passes."""
        if isinstance(turn, Turn):
            return turn
        if not isinstance(turn, Mapping):
            raise TypeError(f"A turn is a Turn or a dict, got {type(turn).__name__}.")
        unknown = sorted(set(turn) - set(_TURN_KEYS) - {"_message"})
        if unknown:
            raise ValueError(f"Unknown turn keys {unknown}; a turn has {', '.join(_TURN_KEYS)}.")
        return cls(**{k: turn[k] for k in _TURN_KEYS if k in turn})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _TURN_KEYS}


_TURN_KEYS = tuple(f.name for f in fields(Turn))
Turn._KEYS = _TURN_KEYS

#: Fields read from the state (``state["turns"]`` etc.), listed after the record's own.
_STATE_KEYS = ("turns", "timing", "usage", "is_truncated")


@dataclass(slots=True, eq=False)
class Rollout(_FieldMapping):
    """One rollout, from its input row to its score.

    Identity: ``example_id`` (the input row), ``group_id`` (the rollouts compared with each
    other; the example id unless the row gives one), ``rollout_index`` (which sample of the
    group). Data: ``prompt``, ``completion``, ``answer``, ``task``, ``info``. Score:
    ``reward`` (NaN until scored), ``metrics`` (reward function name -> value), ``error``
    (``None``, or the reason the rollout failed). ``state`` is the environment's state;
    ``turns`` (a :class:`Turn` per model turn), ``timing``, ``usage`` and ``is_truncated`` are
    its entries.
    """

    example_id: Any = None
    group_id: Any = None
    rollout_index: int = 0
    prompt: Any = None
    completion: Any = None
    answer: Any = ""
    task: str = "default"
    info: dict[str, Any] = field(default_factory=dict)
    reward: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.group_id is None:
            self.group_id = self.example_id

    def __setattr__(self, name: str, value: Any) -> None:
        global _changes
        _changes += 1
        if name == "metrics" and type(value) is not _Metrics:
            value = _Metrics(value)
        object.__setattr__(self, name, value)

    # -- the state's entries ----------------------------------------------------------------
    @property
    def turns(self) -> list[Turn]:
        """``state["turns"]``: one :class:`Turn` per model turn."""
        return self.state.get("turns") or []

    @turns.setter
    def turns(self, value: list[Any]) -> None:
        self.state["turns"] = [Turn.from_mapping(t) for t in value]

    @property
    def timing(self) -> dict[str, float]:
        """``state["timing"]``: ``generation_s``, ``scoring_s``, ``total_s``."""
        return self.state.get("timing") or {}

    @timing.setter
    def timing(self, value: dict[str, float]) -> None:
        self.state["timing"] = value

    @property
    def usage(self) -> dict[str, int]:
        """``state["usage"]``: ``prompt_tokens`` and ``completion_tokens`` over all turns."""
        return self.state.get("usage") or {}

    @usage.setter
    def usage(self, value: dict[str, int]) -> None:
        self.state["usage"] = value

    @property
    def is_truncated(self) -> bool:
        """``state["is_truncated"]``: a turn stopped at its token limit."""
        return bool(self.state.get("is_truncated"))

    @is_truncated.setter
    def is_truncated(self, value: bool) -> None:
        self.state["is_truncated"] = bool(value)

    # -- conversions ------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, record: Mapping[str, Any]) -> Rollout:
        """A :class:`Rollout` from a record dict (a saved ``results.jsonl`` line, or rows
        built by hand); missing fields take their defaults. A Rollout passes unchanged."""
        if isinstance(record, Rollout):
            return record
        reward = record.get("reward", 0.0)
        return cls(
            example_id=record.get("example_id"),
            group_id=record.get("group_id"),
            rollout_index=record.get("rollout_index", 0),
            prompt=record.get("prompt"),
            completion=record.get("completion"),
            answer=record.get("answer", ""),
            task=record.get("task", "default"),
            info=record.get("info") or {},
            reward=math.nan if reward is None else float(reward),
            metrics={k: float(v) for k, v in (record.get("metrics") or {}).items()},
            error=error_text(record.get("error")),
            state=record.get("state") or {},
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as saved: its own fields, ``state`` as it is (holding the turns,
        timing, usage and truncation flag), and ``error`` with the state's details (type,
        message, ...) where the state has them."""
        out = {k: getattr(self, k) for k in _OWN_KEYS}
        out["metrics"] = dict(self.metrics)
        detail = self.state.get("error")
        if self.error is not None and isinstance(detail, Mapping):
            out["error"] = detail
        return out


_OWN_KEYS = tuple(f.name for f in fields(Rollout))
Rollout._KEYS = _OWN_KEYS + _STATE_KEYS


def error_text(error: Any) -> str | None:
    """A rollout's error as its reason string (``"model_error: ..."``), or ``None``."""
    if not error:
        return None
    if isinstance(error, Mapping):
        kind = error.get("type", "error")
        return f"{kind}: {error.get('message', '')}".strip()
    return str(error)


__all__ = ["Rollout", "Turn"]
