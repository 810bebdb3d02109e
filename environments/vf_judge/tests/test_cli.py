"""vf-eval against a scripted policy server and a scripted judge server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def vf_eval(*args: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "verifiers.cli.eval", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )


def test_vf_eval_with_scripted_policy_and_judge(policy, judge_server, tmp_path):
    out = tmp_path / "runs"
    proc = vf_eval(
        "vf-judge", "-b", policy.base_url, "-m", "scripted", "-n", "4", "-r", "1", "-s",
        "-o", str(out), "-a", json.dumps({"judge_base_url": judge_server.base_url}),
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "judge_score" in proc.stderr and "0 failed" in proc.stderr
    (results,) = out.glob("*/*/results.jsonl")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["reward"] for r in records) == [0.0, 0.0, 1.0, 1.0]
    assert all(r["state"]["judge"][0]["response"] for r in records)  # saved with the run
    assert len(judge_server.requests) == 4


def test_vf_eval_missing_judge_key_is_a_clear_error(policy, tmp_path):
    proc = vf_eval(
        "vf-judge", "-b", policy.base_url, "-n", "1",
        "-a", json.dumps({"judge_base_url": "https://judge.example.com/v1"}),
        tmp_path=tmp_path,
    )
    assert proc.returncode == 2
    assert "OPENAI_API_KEY is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert policy.requests == []  # failed before any policy tokens were spent
