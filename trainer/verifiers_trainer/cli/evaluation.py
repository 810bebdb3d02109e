"""vf-train's evaluations: the policy on N held-out problems, with a progress bar, one JSON
line per problem.

A problem's ``score`` is the metric the report calls accuracy (``[eval] metric``): a reward
function's value (``correct_answer`` by default when the rubric has it) or the reward. A
rollout that failed scores 0 and keeps its error.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

from verifiers.cli.eval_samples import completion_text
from verifiers_trainer.cli.train_config import ConfigError, EvalSection


def resolve_metric(env: Any, metric: str) -> str:
    """The per-problem score's name: ``metric``, or for ``"auto"`` ``correct_answer`` when the
    rubric has it, else ``reward``. Raises :class:`ConfigError` for a name the rubric lacks."""
    names = list(env.rubric.get_reward_func_names())
    if metric == "auto":
        return "correct_answer" if "correct_answer" in names else "reward"
    if metric != "reward" and metric not in names:
        raise ConfigError(
            f"eval.metric = {metric!r} is not a reward function of this environment. Use "
            f"\"reward\", \"auto\" or one of: {', '.join(names)}.")
    return metric


def evaluate(env: Any, client: Any, model_name: str, settings: EvalSection, metric: str,
             console: Any, label: str) -> list[dict[str, Any]]:
    """Run the evaluation (one rollout per problem) and return one row per problem."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    inputs = env.get_eval_dataset(settings.num_examples, settings.seed)
    sampling = {"temperature": settings.temperature, "max_tokens": settings.max_tokens}
    scores: list[float] = []
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"), console=console, disable=not console.is_terminal,
    )
    task = progress.add_task(label, total=len(inputs), status="")
    every = max(1, len(inputs) // 10)  # off a terminal: a plain line every 10%
    started = time.perf_counter()

    def on_result(record: dict[str, Any]) -> None:
        scores.append(_score(record, metric))
        status = f"{metric} {sum(scores) / len(scores):.3f}"
        progress.update(task, advance=1, status=status)
        if not console.is_terminal and (len(scores) % every == 0 or len(scores) == len(inputs)):
            console.print(f"{label} {len(scores)}/{len(inputs)} · {status} · "
                          f"{time.perf_counter() - started:.0f} s", highlight=False)

    async def run() -> Any:
        try:
            return await env.a_generate(inputs, client, model_name, sampling,
                                        settings.max_concurrent, on_result=on_result,
                                        progress=False)
        finally:
            if hasattr(client, "close"):
                await client.close()

    with progress:
        results = asyncio.run(run())
    return [_row(record, metric) for record in results.records()]


def _score(record: dict[str, Any], metric: str) -> float:
    if record.get("error"):
        return 0.0
    value = record["reward"] if metric == "reward" else record["metrics"].get(metric, 0.0)
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _row(record: dict[str, Any], metric: str) -> dict[str, Any]:
    usage = (record.get("state") or {}).get("usage") or {}
    return {
        "example_id": record["example_id"],
        "question": _last_user_text(record["prompt"]),
        "answer": record["answer"],
        "completion": _text(record["completion"]),
        "score": _score(record, metric),
        "metric": metric,
        "reward": record["reward"],
        "metrics": record["metrics"],
        "completion_tokens": usage.get("completion_tokens"),
        "error": record["error"],
    }


def _last_user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


def _text(completion: Any) -> str:
    """A single answer as its text; a conversation (tool calls, tool replies, several
    turns) as one ``[role] content`` line per message and one line per tool call."""
    if isinstance(completion, str):
        return completion
    messages = [m for m in completion if isinstance(m, dict)]
    if len(messages) == 1 and not messages[0].get("tool_calls"):
        return str(messages[0].get("content") or "")
    return completion_text(messages)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the rows as JSON lines (through a temporary file, so a file is whole or absent)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=str, allow_nan=True) + "\n")
    tmp.replace(path)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


__all__ = ["evaluate", "read_rows", "resolve_metric", "write_rows"]
