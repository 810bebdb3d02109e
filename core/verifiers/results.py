"""The results of generating rollouts: the rollout records, column views, and summaries.

``GenerateOutputs`` holds one :class:`~verifiers.rollout.Rollout` per rollout
(``results.rollouts``) and answers three ways, each computed from those records:

- as a mapping with plural keys: ``results["rewards"]``, ``results["completions"]``, ...;
- by attribute, with the plural names (``results.rewards``) or verifiers 0.1.x's singular
  ones (``results.reward``, ``.prompt``, ``.completion``, ``.answer``, ``.state``,
  ``.info``, ``.task``, ``.metrics``), which name the same lists;
- unpacked as ``prompts, completions, rewards = results`` (iterating a result yields those
  three lists; ``results.keys()`` lists the keys).

Failed rollouts stay in the lists with reward 0.0 and their reason in ``results["errors"]``;
summaries leave them out of the means and report them separately.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from math import comb
from operator import attrgetter, is_not
from typing import Any

from verifiers.rollout import Rollout, Turn, error_text
from verifiers.rollout import changes as rollout_changes

#: Column key -> the :class:`~verifiers.rollout.Rollout` field it views, in key order.
COLUMNS = {
    "prompts": "prompt", "completions": "completion", "answers": "answer", "states": "state",
    "tasks": "task", "infos": "info", "example_ids": "example_id", "group_ids": "group_id",
    "rollout_indices": "rollout_index", "rewards": "reward", "errors": "error",
}
FIELDS = tuple(COLUMNS)

#: verifiers 0.1.x's singular attribute names -> our keys (the same lists).
SINGULAR_NAMES = {
    "prompt": "prompts", "completion": "completions", "answer": "answers", "state": "states",
    "info": "infos", "task": "tasks", "reward": "rewards", "error": "errors",
    "example_id": "example_ids", "group_id": "group_ids", "rollout_index": "rollout_indices",
}

#: What iterating (tuple-unpacking) a result yields, in order.
UNPACKED = ("prompts", "completions", "rewards")

# State keys that duplicate other fields or are large; left out of saved records.
_HEAVY_STATE_KEYS = {
    "prompt", "completion", "answer", "task", "info", "turns", "example_id", "responses",
}

_CONVERT: dict[str, Callable[[Any], Any]] = {"reward": float, "error": error_text}


def _field_access(name: str) -> tuple[Callable[[Rollout], Any], Callable[[Rollout, Any], None]]:
    convert = _CONVERT.get(name)

    def set_(rollout: Rollout, value: Any) -> None:
        setattr(rollout, name, value if convert is None else convert(value))

    return attrgetter(name), set_


def _checked_column(values: Any, n: int, key: str) -> list[Any]:
    values = list(values)
    if len(values) != n:
        raise ValueError(f"results[{key!r}] needs one value per rollout ({n}); got {len(values)}.")
    return values


def _refuse_length(key: str) -> TypeError:
    return TypeError(
        f"results[{key!r}] was lengthened or shortened, which would no longer match the "
        "rollouts; that change is dropped. Copy the column first (list(results[...])), or "
        "change results.rollouts."
    )


class _SyncedColumn:
    """A plain list kept equal to one field of the rollouts: each time it is handed out,
    items assigned in it since (``results["rewards"][3] = 1.0``) are written to the records,
    then it is read again from them (the same list object)."""

    __slots__ = ("get", "key", "read_at", "seen", "set", "values")

    def __init__(self, key: str, name: str) -> None:
        self.key = key
        self.get, self.set = _field_access(name)
        self.values: list[Any] = []
        self.seen: list[Any] = []
        self.read_at = -1  # rollout.changes() when the column was last read

    def sync(self, rollouts: list[Rollout], apply_edits: bool = True) -> list[Any]:
        values, seen = self.values, self.seen
        changed_length = len(values) != len(seen)
        edited = not changed_length and any(map(is_not, values, seen))
        if (not edited and not changed_length and self.read_at == rollout_changes()
                and len(values) == len(rollouts)):
            return values  # no record written and no item assigned since the last read
        if apply_edits and edited:
            for rollout, mine, old in zip(rollouts, values, seen, strict=False):  # rollouts may have grown
                if mine is not old:
                    self.set(rollout, mine)
        fresh = list(map(self.get, rollouts))
        values[:] = fresh
        self.seen = fresh
        self.read_at = rollout_changes()
        if apply_edits and changed_length:
            raise _refuse_length(self.key)
        return values


class _SyncedMetrics:
    """``{reward function name: plain list}`` kept equal to the rollouts' metrics (first-seen
    order), as :class:`_SyncedColumn` does for one field; a name added to (or removed from)
    the dict adds (or removes) that metric on every rollout."""

    __slots__ = ("read_at", "read_n", "seen", "values")

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.seen: dict[str, tuple[list[float], list[float]]] = {}  # name -> (list, snapshot)
        self.read_at = -1  # rollout.changes() when the metrics were last read
        self.read_n = -1  # how many rollouts there were then

    def _unchanged(self, n: int) -> bool:
        values, seen = self.values, self.seen
        if self.read_at != rollout_changes() or self.read_n != n or values.keys() != seen.keys():
            return False
        for name, column in values.items():
            held, old = seen[name]
            if column is not held or len(column) != n or len(old) != n or any(map(is_not, column, old)):
                return False
        return True

    def sync(self, rollouts: list[Rollout], apply_edits: bool = True) -> dict[str, list[float]]:
        values, n = self.values, len(rollouts)
        if self._unchanged(n):
            return values
        if apply_edits:
            for name in [k for k in self.seen if k not in values]:
                for rollout in rollouts:
                    rollout.metrics.pop(name, None)
            for name, column in values.items():
                held, old = self.seen.get(name, (None, None))
                if column is not held or old is None:  # a metric added or replaced
                    column = _checked_column(column, n, f"metrics[{name!r}]")
                    for rollout, value in zip(rollouts, column, strict=True):
                        rollout.metrics[name] = float(value)
                elif len(column) != len(old):
                    self._read(rollouts)
                    raise _refuse_length(f"metrics[{name!r}]")
                elif any(map(is_not, column, old)):
                    for rollout, mine, before in zip(rollouts, column, old, strict=False):
                        if mine is not before:
                            rollout.metrics[name] = float(mine)
        return self._read(rollouts)

    def _read(self, rollouts: list[Rollout]) -> dict[str, list[float]]:
        names: dict[str, None] = {}
        for rollout in rollouts:
            for name in rollout.metrics:
                names.setdefault(name, None)
        values = self.values
        for stale in [name for name in values if name not in names]:
            del values[stale]
        self.seen = {}
        for name in names:
            fresh = [r.metrics.get(name, math.nan) for r in rollouts]
            column = values.get(name)
            if type(column) is not list:
                column = values[name] = []
            column[:] = fresh
            self.seen[name] = (column, fresh)
        self.read_at, self.read_n = rollout_changes(), len(rollouts)
        return values


class GenerateOutputs(dict):
    """Rollout results: ``results.rollouts`` (one :class:`~verifiers.rollout.Rollout` each)
    and, read from them, the columns prompts, completions, answers, states, tasks, infos,
    example_ids, group_ids, rollout_indices, rewards, errors (``None`` or a reason per
    rollout), and metrics (``{reward function name: [values]}``).

    Built from records (Rollouts, or dicts with the same keys) or from columns
    (``GenerateOutputs(prompt=[...], completion=[...], reward=[...])``). Each column is a
    plain list that is reconciled with the records whenever it is asked for (through
    ``results[...]``, an attribute, ``items()``, ``results.rollouts``, ...): items assigned
    in it are written to the records, then it is read again from them. Assigning a whole
    column (``results["rewards"] = [...]``) writes the records. Other keys are kept as given.
    Iterating yields ``prompts, completions, rewards`` (see the module docstring).
    """

    def __init__(self, records: Iterable[Mapping[str, Any]] = (), **extra: Any) -> None:
        super().__init__()
        object.__setattr__(self, "_rollouts", [Rollout.from_mapping(r) for r in records])
        object.__setattr__(self, "_views", {})
        given = {SINGULAR_NAMES.get(name, name): value for name, value in extra.items()}
        columns = {k: v for k, v in given.items() if k in COLUMNS}
        if not self._rollouts and (columns or "metrics" in given):
            self._from_columns(columns, given.get("metrics") or {})
        for key in (*FIELDS, "metrics"):
            view = _SyncedMetrics() if key == "metrics" else _SyncedColumn(key, COLUMNS[key])
            self._views[key] = view
            dict.__setitem__(self, key, view.sync(self._rollouts, apply_edits=False))
        for key, value in given.items():
            self[key] = value

    def _from_columns(self, columns: dict[str, Any], metrics: Mapping[str, Any]) -> None:
        lengths = {key: len(values) for key, values in {**columns, **metrics}.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"GenerateOutputs columns differ in length: {lengths}; give one "
                             "value per rollout in each.")
        n = next(iter(lengths.values()), 0)
        rollouts = [Rollout(reward=0.0) for _ in range(n)]
        for key, values in columns.items():
            _, set_ = _field_access(COLUMNS[key])
            for rollout, value in zip(rollouts, values, strict=True):
                set_(rollout, value)
        if "group_ids" not in columns:
            for rollout in rollouts:
                rollout.group_id = rollout.example_id
        for name, values in metrics.items():
            for rollout, value in zip(rollouts, values, strict=True):
                rollout.metrics[name] = float(value)
        self._rollouts.extend(rollouts)

    _rollouts: list[Rollout]
    _views: dict[str, Any]

    @property
    def rollouts(self) -> list[Rollout]:
        """The records (the list itself: append to it, or edit its rollouts, to change the
        results)."""
        self._sync()
        return self._rollouts

    def _sync(self) -> None:
        for view in self._views.values():
            view.sync(self._rollouts)

    # -- mapping access -------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        view = self._views.get(key)
        if view is not None:
            return view.sync(self._rollouts)
        return dict.__getitem__(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        name = COLUMNS.get(key)
        if name is not None:
            values = _checked_column(value, len(self._rollouts), key)
            view = self._views[key]
            for rollout, v in zip(self._rollouts, values, strict=True):
                view.set(rollout, v)
            view.sync(self._rollouts, apply_edits=False)
        elif key == "metrics":
            columns = {k: _checked_column(v, len(self._rollouts), f"metrics[{k!r}]")
                       for k, v in dict(value).items()}
            for i, rollout in enumerate(self._rollouts):
                rollout.metrics = {k: float(v[i]) for k, v in columns.items()}
            self._views[key].sync(self._rollouts, apply_edits=False)
        else:
            dict.__setitem__(self, key, value)

    def _refuse_removal(self, key: Any) -> None:
        if key in self._views:
            raise KeyError(f"{key!r} is a column of the rollouts and cannot be removed.")

    def __delitem__(self, key: str) -> None:
        self._refuse_removal(key)
        dict.__delitem__(self, key)

    def pop(self, key: str, *default: Any) -> Any:
        self._refuse_removal(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        raise TypeError("GenerateOutputs' columns cannot be removed; pop a key by name.")

    def clear(self) -> None:
        raise TypeError("GenerateOutputs' columns cannot be removed; clear results.rollouts.")

    def values(self) -> Any:
        self._sync()
        return dict.values(self)

    def items(self) -> Any:
        self._sync()
        return dict.items(self)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def copy(self) -> dict[str, Any]:  # type: ignore[override]
        """The columns (and other keys) as a plain dict of new lists."""
        return {k: _copy(v) for k, v in self.items()}

    def __eq__(self, other: object) -> bool:
        self._sync()
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._sync()
        return dict.__repr__(self)

    def __reduce__(self) -> Any:
        self._sync()
        extra = {k: v for k, v in dict.items(self) if k not in self._views}
        return (_rebuild, (self._rollouts, extra))

    # -- attribute access -----------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        try:
            return self[SINGULAR_NAMES.get(name, name)]
        except KeyError:
            raise AttributeError(
                f"GenerateOutputs has no {name!r}; keys: {', '.join(self.keys())}."
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        key = SINGULAR_NAMES.get(name, name)
        if key not in self:
            raise AttributeError(
                f"GenerateOutputs has no {name!r}; keys: {', '.join(self.keys())}."
            )
        self[key] = value

    def __iter__(self) -> Any:
        """``prompts, completions, rewards = env.generate(...)``."""
        return iter([self[key] for key in UNPACKED])

    @property
    def num_rollouts(self) -> int:
        return len(self._rollouts)

    def append(self, record: Mapping[str, Any]) -> None:
        """Add a rollout (a :class:`~verifiers.rollout.Rollout` or a record dict)."""
        self.rollouts.append(Rollout.from_mapping(record))

    def records(self) -> list[Rollout]:
        """The rollouts, in order (a new list of the same records)."""
        return list(self.rollouts)

    def model_dump(self) -> dict[str, Any]:
        """The columns under verifiers 0.1.x's singular names (``prompt``, ``completion``,
        ``answer``, ``state``, ``info``, ``task``, ``reward``, ``metrics``), as its
        pydantic ``GenerateOutputs.model_dump()`` gave them."""
        names = ("prompt", "completion", "answer", "state", "info", "task", "reward")
        return {**{name: self[SINGULAR_NAMES[name]] for name in names}, "metrics": self["metrics"]}

    @property
    def num_failed(self) -> int:
        return sum(r.error is not None for r in self.rollouts)

    def summary(self) -> dict[str, Any]:
        return summarize(self)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return list(value) if isinstance(value, list) else value


def _rebuild(rollouts: list[Rollout], extra: dict[str, Any]) -> GenerateOutputs:
    return GenerateOutputs(rollouts, **extra)


def record_to_json(record: Mapping[str, Any], keep_token_ids: bool = False) -> str:
    """One JSONL line for a rollout record (heavy state keys dropped unless asked)."""
    out = record.to_dict() if isinstance(record, Rollout) else dict(record)
    state = out.get("state") or {}
    drop = _HEAVY_STATE_KEYS - ({"turns"} if keep_token_ids else set())
    out["state"] = {k: v for k, v in state.items() if k not in drop}
    return json.dumps(out, default=_json_default, allow_nan=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, Turn):
        return value.to_dict()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def pass_at_k(num_samples: int, num_correct: int, k: int) -> float:
    """The unbiased pass@k estimator (Chen et al., 2021) for one problem."""
    if num_samples - num_correct < k:
        return 1.0
    return 1.0 - comb(num_samples - num_correct, k) / comb(num_samples, k)


def _stats(values: list[float]) -> dict[str, float]:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.pstdev(clean) if len(clean) > 1 else 0.0
    return {"mean": statistics.fmean(clean), "std": std, "n": len(clean)}


PASS_AT_K = (1, 2, 4, 8, 16, 32, 64, 128)


def pass_at_k_by_example(groups: list[list[float]]) -> dict[int, float]:
    """Mean pass@k over examples, each a list of its rollouts' 0/1 values, for every k up to
    the smallest group's size."""
    fewest = min(len(g) for g in groups)
    return {
        k: statistics.fmean(pass_at_k(len(g), int(sum(g)), k) for g in groups)
        for k in PASS_AT_K if k <= fewest
    }


def summarize(results: GenerateOutputs) -> dict[str, Any]:
    """Means and standard deviations over successful rollouts, pass@k where rewards are
    binary, error counts by reason, and timing."""
    rollouts = results.rollouts
    ok = [r for r in rollouts if r.error is None]
    rewards = [r.reward for r in ok]
    summary: dict[str, Any] = {
        "num_rollouts": len(rollouts),
        "num_failed": len(rollouts) - len(ok),
        "reward": _stats(rewards),
        "metrics": {
            name: _stats([r.metrics.get(name, math.nan) for r in ok])
            for name in results["metrics"]
        },
    }
    reasons = Counter(r.error.split(":", 1)[0] for r in rollouts if r.error is not None)
    summary["errors"] = dict(reasons)
    if rewards and all(r in (0.0, 1.0) for r in rewards):
        by_example: dict[Any, list[float]] = defaultdict(list)
        for r in ok:
            by_example[r.example_id].append(r.reward)
        summary["pass_at_k"] = pass_at_k_by_example(list(by_example.values()))
    timings = [r.timing for r in rollouts]
    summary["timing"] = {
        key: _stats([float(t[key]) for t in timings if key in t])
        for key in ("generation_s", "scoring_s", "total_s")
    }
    tokens = [r.usage.get("completion_tokens") for r in rollouts]
    summary["completion_tokens"] = _stats([float(t) for t in tokens if t is not None])
    return summary
