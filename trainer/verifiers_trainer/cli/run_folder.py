"""A vf-train run folder: where each file lives, which stages are done, how long each took,
and whether a new config may continue it.

::

    <output_dir>/<name>/
        config.toml          the resolved config (what --print-config shows)
        state.json           stages done, commands that ran
        timings.json         seconds per stage, summed over the commands that ran
        metrics.jsonl        every logged training step
        eval_before.jsonl    one line per evaluated problem
        eval_after.jsonl
        checkpoints/         the Trainer's checkpoints (weights, optimizer, RNG, prompt stream)
        final/               the trained model (merged for LoRA; adapter in final/adapter/)
        plots/*.png
        report.md
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifiers_trainer.cli.toml_io import dumps
from verifiers_trainer.cli.train_config import ConfigError

#: Resolved-config keys that may change between the commands of one run: where the folder
#: is (a moved folder still resumes), starting over, and the length of training.
MAY_CHANGE = ("run.name", "run.output_dir", "run.overwrite", "trainer.max_steps")


@dataclass
class RunFolder:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def timings_file(self) -> Path:
        return self.path / "timings.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def eval_before(self) -> Path:
        return self.path / "eval_before.jsonl"

    @property
    def eval_after(self) -> Path:
        return self.path / "eval_after.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def final(self) -> Path:
        return self.path / "final"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def report(self) -> Path:
        return self.path / "report.md"

    # -- opening ---------------------------------------------------------------------------
    def check(self, resolved: dict[str, Any], overwrite: bool) -> bool:
        """Whether an earlier run is there to continue; raises :class:`ConfigError` when the
        folder is not a run folder, or holds a run whose config differs from ``resolved``
        (unless ``overwrite``). Changes nothing."""
        existing = self.path.exists() and any(self.path.iterdir())
        if existing and not self.config.is_file():
            raise ConfigError(
                f"{self.path} exists and is not a vf-train run folder (no config.toml). Choose "
                "another --run.name or --run.output_dir.")
        if not existing or overwrite:
            return False
        saved = tomllib.loads(self.config.read_text())
        changed = config_differences(saved, resolved)
        if changed:
            lines = "\n".join(f"  {key}: {old!r} in the run, {new!r} now"
                              for key, old, new in changed)
            raise ConfigError(
                f"{self.path} holds a run with a different config:\n{lines}\n"
                "Re-run with the same settings to resume it, --run.name NEW_NAME to start a "
                "separate run, or --run.overwrite true to delete it and start over.")
        trained = self.state().get("stages", {}).get("train", {}).get("global_step", 0)
        max_steps = resolved.get("trainer", {}).get("max_steps", 0)
        if trained > max_steps:
            raise ConfigError(
                f"{self.path} has already trained {trained} steps, more than trainer.max_steps "
                f"= {max_steps}. Raise max_steps to continue it, or start a separate run with "
                "--run.name NEW_NAME.")
        return True

    def open(self, resolved: dict[str, Any], overwrite: bool) -> bool:
        """:meth:`check`, then create the folder (emptied first with ``overwrite``) and write
        ``config.toml``. Returns whether an earlier run is continued."""
        existing = self.check(resolved, overwrite)
        if overwrite and self.config.is_file():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config.write_text(dumps(resolved))
        return existing

    # -- state and timings -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return _read_json(self.state_file, {"stages": {}, "commands": []})

    def save_state(self, state: dict[str, Any]) -> None:
        _write_json(self.state_file, state)

    def timings(self) -> dict[str, float]:
        return _read_json(self.timings_file, {})

    def add_time(self, key: str, seconds: float) -> None:
        timings = self.timings()
        timings[key] = timings.get(key, 0.0) + seconds
        _write_json(self.timings_file, timings)


def config_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved value, new value)`` for every leaf that differs, except
    :data:`MAY_CHANGE`."""
    flat_saved, flat_new = _flatten(saved), _flatten(new)
    out = []
    for key in sorted(set(flat_saved) | set(flat_new)):
        if key in MAY_CHANGE:
            continue
        old, value = flat_saved.get(key), flat_new.get(key)
        if old != value:
            out.append((key, old, value))
    return out


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    return json.loads(path.read_text())


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


__all__ = ["MAY_CHANGE", "RunFolder", "config_differences", "now"]
