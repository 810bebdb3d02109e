"""TrainerCallbacks of vf-train: every logged step to ``metrics.jsonl``, and a progress bar.

The progress bar replaces transformers' own (tqdm, or one printed dict per log when tqdm is
off). On a terminal it is a live bar whose status shows the latest reward, KL and
completion length; elsewhere (a log file, CI) each logged step is one plain line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class MetricsFile(TrainerCallback):
    """Appends ``{"step", "time", **logs}`` to a JSON-lines file at every log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        entry = {"step": state.global_step, "time": time.time(), **logs}
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry, default=float, allow_nan=True) + "\n")


def keep_steps_up_to(path: Path, step: int) -> None:
    """Drop logged entries after ``step`` (a resumed run logs them again)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def status_text(logs: dict[str, Any]) -> str:
    """``reward 0.412 · kl 0.0012 · len 57`` from one log entry (the keys that are there)."""
    parts = []
    for key, label, fmt in (("reward", "reward", ".3f"), ("kl", "kl", ".4f"),
                            ("completions/mean_length", "len", ".0f"), ("loss", "loss", ".4f")):
        if key in logs:
            parts.append(f"{label} {logs[key]:{fmt}}")
    return " · ".join(parts)


class TrainProgress(TrainerCallback):
    """A rich progress bar over optimizer steps (resumed runs start where they left off)."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.progress: Any = None
        self.task: Any = None
        self.started = 0.0
        self.first_step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if not state.is_world_process_zero:
            return
        self.started = time.perf_counter()
        self.first_step = state.global_step
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"), console=self.console,
            )
            self.task = self.progress.add_task("training", total=state.max_steps,
                                               completed=state.global_step, status="")
            self.progress.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        status = status_text(logs)
        if self.progress is not None:
            self.progress.update(self.task, status=status)
            return
        done = state.global_step - self.first_step
        per_step = (time.perf_counter() - self.started) / max(1, done)
        self.console.print(f"step {state.global_step}/{state.max_steps} · {status} · "
                           f"{per_step:.1f} s/step", highlight=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


__all__ = ["MetricsFile", "TrainProgress", "keep_steps_up_to", "status_text"]
