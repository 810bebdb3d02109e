"""``report_to``: vf-train passes it to the Trainer, whose TensorBoard callback writes event
files with the logged training values (``pip install 'vf-trainer[tensorboard]'``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_shipped_tensorboard_config_sets_report_to():
    config = tomllib.loads((ROOT / "configs" / "tiny-tensorboard.toml").read_text())
    assert config["trainer"]["report_to"] == "tensorboard"


def test_a_run_reporting_to_tensorboard_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard", reason="report_to='tensorboard' needs "
                                              "pip install 'vf-trainer[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-m", "verifiers_trainer.cli.train", str(ROOT / "configs" / "tiny-tensorboard.toml"),
         "--run.output_dir", str(tmp_path), "--eval.before", "false", "--eval.after", "false"],
        capture_output=True, text=True, env=env, timeout=500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    events = sorted((tmp_path / "tiny-tensorboard").rglob("events.out.tfevents.*"))
    assert events, f"no event files under {tmp_path}"
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    scalars = accumulator.Tags()["scalars"]
    assert "train/reward" in scalars and "train/loss" in scalars, scalars
    steps = [event.step for event in accumulator.Scalars("train/reward")]
    assert steps == [1, 2]
