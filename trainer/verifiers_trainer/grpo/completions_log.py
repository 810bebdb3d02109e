"""The completions table (``log_completions``): printed, appended to
``<output_dir>/completions.jsonl``, and sent to Weights & Biases when it is a ``report_to``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

COLUMNS = ("step", "prompt", "completion", "reward")


def _text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    return "\n".join(f"{m.get('role', '?')}: {m.get('content') or ''}" for m in messages)


def _last_user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"]
    return str((users[-1] if users else prompt[-1]).get("content") or "") if prompt else ""


def rows_of(step: int, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat record per completion: step, the prompt's last user message, the completion
    (every message it holds, roles included), the reward and each reward function's value."""
    rows = []
    for item in items:
        row = {"step": step, "prompt": _last_user_text(item["prompt"]),
               "completion": _text(item["completion"]), "reward": item["reward"]}
        row.update({f"rewards/{k}": v for k, v in item.get("metrics", {}).items()})
        rows.append(row)
    return rows


def log_completions(step: int, items: Sequence[dict[str, Any]], output_dir: str,
                    report_to: Sequence[str] = (), width: int = 120) -> None:
    if not items:
        return
    rows = rows_of(step, items)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "completions.jsonl"), "a") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=str) + "\n")
    _print_table(step, rows, width)
    if "wandb" in report_to:
        _to_wandb(rows)


def _print_table(step: int, rows: list[dict[str, Any]], width: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"completions at step {step}", show_lines=True, width=width)
    table.add_column("prompt", ratio=2, overflow="fold")
    table.add_column("completion", ratio=5, overflow="fold")
    table.add_column("reward", justify="right", no_wrap=True)
    for row in rows:
        completion = row["completion"]
        if len(completion) > 600:
            completion = completion[:300] + " … " + completion[-280:]
        table.add_row(row["prompt"][-200:], completion, f"{row['reward']:.3f}")
    Console(file=sys.stdout, width=width).print(table)


def _to_wandb(rows: list[dict[str, Any]]) -> None:
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is None:
        return
    columns = sorted({key for row in rows for key in row}, key=lambda k: (k not in COLUMNS, k))
    data = [[row.get(c) for c in columns] for row in rows]
    wandb.log({"completions": wandb.Table(columns=columns, data=data)}, commit=False)
