"""A saved vf-eval run on disk: ``results.jsonl`` (one rollout a line, appended as each
finishes) and ``metadata.json`` (settings, status, summary, and verifiers 0.1.x's flat keys).

Nothing is lost when a run is killed: ``metadata.json`` is replaced atomically; a last line
cut short by the kill is dropped before a resumed run appends; at the end of a run the
results file is rewritten (atomically) with one line per rollout, and the summary is computed
from what is on disk.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any

from verifiers.cli.eval_settings import UsageError, check_saved_settings

RESULTS_FILE = "results.jsonl"
METADATA_FILE = "metadata.json"

Key = tuple[Any, int]


def run_dir_for(output_dir: str, env_id: str, model: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_model = model.replace("/", "--")
    return Path(output_dir) / f"{env_id}--{safe_model}" / f"{stamp}-{secrets.token_hex(2)}"


def read_metadata(run_dir: str | Path) -> dict[str, Any]:
    """A saved run's ``metadata.json``, checked; :class:`UsageError` when it is missing,
    not JSON, or lacks the settings a resume needs."""
    path = Path(run_dir) / METADATA_FILE
    if not Path(run_dir).is_dir() or not path.is_file():
        raise UsageError(f"--resume {run_dir} is not a saved run (no {METADATA_FILE}). Runs "
                         "saved with -s live under outputs/evals/<env>--<model>/<run-id>/.")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); the file is damaged. Start a new "
                         "run instead (its results.jsonl can still be read).") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path} holds {type(meta).__name__}, not a JSON object; the file is "
                         "damaged. Start a new run instead.")
    check_saved_settings(meta.get("settings"), str(path))
    return meta


def record_key(record: dict[str, Any]) -> Key:
    return record.get("example_id"), int(record.get("rollout_index", 0))


def load_records(run_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """The saved rollouts (for a rollout saved twice, the later line wins) and the number of
    lines that could not be read."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return [], 0
    latest: dict[Key, dict[str, Any]] = {}
    unreadable = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
                latest[record_key(record)] = record
            except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
                unreadable += 1
    return list(latest.values()), unreadable


def drop_torn_tail(run_dir: Path) -> int:
    """Cut a last line left without its newline by a killed run (its rollout runs again);
    returns the number of bytes dropped."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return 0
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        block = 1 << 16
        end = size
        while end > 0:  # find the last newline, reading backwards
            start = max(0, end - block)
            handle.seek(start)
            chunk = handle.read(end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        else:
            keep = 0
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return size - keep


def rewrite_records(run_dir: Path, records: list[dict[str, Any]], to_json: Any) -> None:
    """Replace ``results.jsonl`` atomically with ``records``, one line each."""
    tmp = run_dir / (RESULTS_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(to_json(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(run_dir / RESULTS_FILE)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def flat_metadata(settings: dict[str, Any], summary: dict[str, Any], num_examples: int) -> dict[str, Any]:
    """verifiers 0.1.x's metadata keys: env, model, num_examples, rollouts_per_example,
    sampling_args, date, time, avg_reward and avg_<metric> (means over successful rollouts;
    null when none succeeded). ``num_examples`` is the number evaluated."""
    now = time.localtime()
    flat: dict[str, Any] = {
        "env": settings["env_id"],
        "model": settings["model"],
        "num_examples": num_examples,
        "rollouts_per_example": settings["rollouts_per_example"],
        "sampling_args": settings["sampling_args"],
        "date": time.strftime("%Y-%m-%d", now),
        "time": time.strftime("%H:%M:%S", now),
        "avg_reward": _finite(summary["reward"].get("mean")),
    }
    for name, stats in summary["metrics"].items():
        flat.setdefault(f"avg_{name}", _finite(stats.get("mean")))
    return flat


def write_metadata(run_dir: Path, settings: dict[str, Any], status: str, **extra: Any) -> None:
    """Replace ``metadata.json`` atomically."""
    from verifiers import __version__

    meta = {"settings": settings, "status": status, "verifiers_version": __version__, **extra}
    tmp = run_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str, allow_nan=True))
    tmp.replace(run_dir / METADATA_FILE)
