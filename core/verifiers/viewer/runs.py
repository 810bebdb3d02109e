"""Saved runs read back for the viewer: vf-eval runs (``metadata.json`` + ``results.jsonl``)
and vf-train runs (``config.toml``, ``metrics.jsonl``, ``eval_before.jsonl`` /
``eval_after.jsonl``, ``report.md``), as plain JSON-ready dicts.

A run has ``kind`` (``"eval"`` or ``"train"``), ``name``, ``path``, ``summary`` (rows of the
summary table), ``rollout_sets`` (``{label: [rollout, ...]}``) and, for training runs,
``curves`` (``{metric: [[step, value], ...]}``). A rollout is ``{example_id, rollout_index,
prompt, completion, answer, reward, metrics, error}`` with prompt and completion as lists of
chat messages (a plain-text completion becomes one assistant message).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EVAL_FILES = ("metadata.json", "results.jsonl")
TRAIN_MARKERS = ("config.toml", "metrics.jsonl")
#: Logged training values drawn as curves, when the run has them (others follow, sorted).
PREFERRED_CURVES = ("reward", "loss", "kl", "completions/mean_length", "reward_std",
                    "learning_rate", "grad_norm")


class RunError(ValueError):
    """A folder that is not a saved run."""


def is_eval_run(path: Path) -> bool:
    return all((path / name).is_file() for name in EVAL_FILES)


def is_train_run(path: Path) -> bool:
    return all((path / name).is_file() for name in TRAIN_MARKERS)


def find_runs(paths: Iterable[Path]) -> list[Path]:
    """Every run folder at or below ``paths``, in the order given (each path's runs sorted).
    Raises :class:`RunError` for a path that is missing or holds no run."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise RunError(f"{path} does not exist.")
        if is_eval_run(path) or is_train_run(path):
            runs = [path]
        else:
            runs = sorted({p.parent for name in ("metadata.json", "config.toml")
                           for p in path.rglob(name) if is_eval_run(p.parent) or is_train_run(p.parent)})
        if not runs:
            raise RunError(
                f"{path} holds no saved run: looked for vf-eval runs ({' + '.join(EVAL_FILES)}, "
                f"written by vf-eval -s under outputs/evals/) and vf-train runs "
                f"({' + '.join(TRAIN_MARKERS)}, under outputs/runs/).")
        found += [r for r in runs if r not in found]
    return found


def load_run(path: Path) -> dict[str, Any]:
    if is_eval_run(path):
        return _clean(_eval_run(path))
    if is_train_run(path):
        return _clean(_train_run(path))
    raise RunError(f"{path} is not a saved run.")


# ------------------------------------------------------------------------------------------
# vf-eval runs
# ------------------------------------------------------------------------------------------


def _eval_run(path: Path) -> dict[str, Any]:
    from verifiers.cli.eval_store import load_records
    from verifiers.pass_rates import binary_metric_pass_at_k
    from verifiers.results import GenerateOutputs, summarize

    meta = json.loads((path / "metadata.json").read_text())
    settings = meta.get("settings", {})
    records = sorted(load_records(path)[0],
                     key=lambda r: (str(r.get("example_id")), r.get("rollout_index", 0)))
    outputs = GenerateOutputs(records)
    summary = summarize(outputs)
    rows = [("rollouts", summary["num_rollouts"]), ("failed", summary["num_failed"]),
            ("reward", summary["reward"]["mean"])]
    rows += [(name, stats["mean"]) for name, stats in summary["metrics"].items()]
    rows += [(f"pass@{k} reward", v) for k, v in (summary.get("pass_at_k") or {}).items()]
    rows += [(f"pass@{k} {name}", v) for name, by_k in binary_metric_pass_at_k(outputs).items()
             for k, v in by_k.items()]
    return {
        "kind": "eval",
        "name": f"{settings.get('env_id', path.parent.name)} · {settings.get('model', '?')} · {path.name}",
        "path": str(path),
        "status": meta.get("status", "?"),
        "settings": {k: settings.get(k) for k in ("env_id", "model", "base_url", "num_examples",
                                                  "rollouts_per_example", "sampling_args")
                     if k in settings},
        "summary": [{"label": label, "value": value} for label, value in rows],
        "rollout_sets": {"rollouts": [_rollout(r) for r in records]},
        "curves": {},
    }


def _messages(value: Any, role: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    out = []
    for message in value:
        if not isinstance(message, dict):
            continue
        item = {"role": message.get("role", "?"), "content": _text(message.get("content"))}
        calls = [_tool_call(c) for c in message.get("tool_calls") or []]
        if calls:
            item["tool_calls"] = calls
        if message.get("tool_call_id"):
            item["tool_call_id"] = message["tool_call_id"]
        out.append(item)
    return out


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # content parts
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _tool_call(call: Any) -> dict[str, Any]:
    function = (call.get("function") if isinstance(call, dict) else None) or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"id": call.get("id", "") if isinstance(call, dict) else "",
            "name": function.get("name", "?"), "arguments": arguments}


def _rollout(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "example_id": record.get("example_id"),
        "rollout_index": record.get("rollout_index", 0),
        "prompt": _messages(record.get("prompt"), "user"),
        "completion": _messages(record.get("completion"), "assistant"),
        "answer": _text(record.get("answer")),
        "reward": record.get("reward"),
        "metrics": record.get("metrics") or {},
        "error": _error(record.get("error")),
    }


def _error(error: Any) -> str | None:
    if not error:
        return None
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('message', '')}".strip()
    return str(error)


# ------------------------------------------------------------------------------------------
# vf-train runs
# ------------------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by an interrupted run
                continue
    return rows


def _train_run(path: Path) -> dict[str, Any]:
    config = tomllib.loads((path / "config.toml").read_text())
    by_step: dict[int, dict[str, Any]] = {}
    for entry in _jsonl(path / "metrics.jsonl"):
        if "step" in entry:
            by_step.setdefault(int(entry["step"]), {}).update(entry)
    keys = {k for e in by_step.values() for k, v in e.items()
            if isinstance(v, int | float) and not isinstance(v, bool)} - {"step", "time", "epoch"}
    ordered = [k for k in PREFERRED_CURVES if k in keys] + sorted(keys - set(PREFERRED_CURVES))
    curves = {k: [[step, e[k]] for step, e in sorted(by_step.items())
                  if isinstance(e.get(k), int | float) and math.isfinite(e[k])] for k in ordered}
    curves = {k: v for k, v in curves.items() if v}
    sets, rows = {}, []
    for label in ("eval_before", "eval_after"):
        evaluated = _jsonl(path / f"{label}.jsonl")
        if not evaluated:
            continue
        sets[label] = [_eval_row(r, i) for i, r in enumerate(evaluated)]
        scores = [float(r["score"]) for r in evaluated if isinstance(r.get("score"), int | float)]
        metric = evaluated[0].get("metric", "score")
        rows.append({"label": f"{label.replace('_', ' ')}: {metric}",
                     "value": sum(scores) / len(scores) if scores else None})
        rows.append({"label": f"{label.replace('_', ' ')}: failed",
                     "value": sum(1 for r in evaluated if r.get("error"))})
    rows.insert(0, {"label": "steps logged", "value": len(by_step)})
    report = path / "report.md"
    return {
        "kind": "train",
        "name": f"{config.get('run', {}).get('name', path.name)} · {config.get('model', {}).get('name', '?')}"
                f" · {config.get('env', {}).get('id', '?')}",
        "path": str(path),
        "status": "report written" if report.is_file() else "no report yet",
        "settings": {"model": config.get("model", {}).get("name"),
                     "env_id": config.get("env", {}).get("id"),
                     "max_steps": config.get("trainer", {}).get("max_steps")},
        "summary": rows,
        "rollout_sets": sets,
        "curves": curves,
        "report": report.read_text() if report.is_file() else None,
    }


def _eval_row(row: dict[str, Any], index: int) -> dict[str, Any]:
    metric = row.get("metric")
    metrics = dict(row.get("metrics") or {})
    if metric and metric not in metrics and row.get("score") is not None:
        metrics[metric] = row["score"]
    return {
        "example_id": row.get("example_id", index),
        "rollout_index": 0,
        "prompt": _messages(row.get("question"), "user"),
        "completion": _messages(row.get("completion"), "assistant"),
        "answer": _text(row.get("answer")),
        "reward": row.get("reward"),
        "metrics": metrics,
        "error": _error(row.get("error")),
    }


def _clean(value: Any) -> Any:
    """NaN and infinities become ``None`` (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


__all__ = ["RunError", "find_runs", "is_eval_run", "is_train_run", "load_run"]
