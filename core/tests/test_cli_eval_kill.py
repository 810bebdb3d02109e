"""vf-eval -s killed with SIGKILL in the middle of a run, then resumed: every rollout is on
disk exactly once and metadata.json agrees with the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verifiers.testing import ScriptedServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES, ROLLOUTS = 12, 2


def vf_eval(*args: str, env_dir: Path, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(env_dir), os.environ.get("PYTHONPATH", "")])}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "verifiers.cli.eval", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines_of(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def test_sigkill_mid_run_then_resume_loses_nothing(installed_envs, tmp_path):
    with ScriptedServer.spawn(latency_ms=120) as server:
        out = tmp_path / "out"
        args = ["vf-toy-math", "-m", "scripted", "-b", server.base_url, "-n", str(EXAMPLES),
                "-r", str(ROLLOUTS), "-a", json.dumps({"num_examples": EXAMPLES}), "-c", "2",
                "-s", "-o", str(out)]
        first = vf_eval(*args, env_dir=installed_envs, cwd=tmp_path)
        deadline = time.monotonic() + 120
        results = None
        while time.monotonic() < deadline and first.poll() is None:
            found = list(out.glob("*/*/results.jsonl"))
            if found and lines_of(found[0]) >= 4:
                results = found[0]
                break
            time.sleep(0.02)
        assert results is not None, first.communicate()[1][-2000:]
        first.send_signal(signal.SIGKILL)
        first.communicate()
        assert first.returncode == -signal.SIGKILL
        run = results.parent
        kept = lines_of(results)
        assert 4 <= kept < EXAMPLES * ROLLOUTS
        assert json.loads((run / "metadata.json").read_text())["status"] == "running"
        # A write cut short by the kill: a partial record with no newline at the end.
        with results.open("ab") as handle:
            handle.write(b'{"example_id": 11, "rollout_index": 1, "prompt": [{"role": "us')

        server.reset_stats()
        second = vf_eval("--resume", str(run), env_dir=installed_envs, cwd=tmp_path)
        _, err = second.communicate(timeout=240)
        assert second.returncode == 0, err[-3000:]
        assert "Dropped a last line cut short" in err
        assert server.stats()["completed"] == EXAMPLES * ROLLOUTS - kept  # only what was missing

    records = [json.loads(line) for line in results.read_text().splitlines()]
    keys = [(r["example_id"], r["rollout_index"]) for r in records]
    expected = {(e, i) for e in range(EXAMPLES) for i in range(ROLLOUTS)}
    assert len(keys) == len(expected) and set(keys) == expected  # each exactly once
    assert all(r["error"] is None for r in records)
    meta = json.loads((run / "metadata.json").read_text())
    rewards = [r["reward"] for r in records]
    assert meta["status"] == "complete"
    assert meta["summary"]["num_rollouts"] == len(records) and meta["summary"]["num_failed"] == 0
    assert meta["summary"]["reward"]["n"] == len(records)
    assert meta["avg_reward"] == pytest.approx(sum(rewards) / len(rewards))
    assert meta["num_examples"] == EXAMPLES and meta["rollouts_per_example"] == ROLLOUTS
