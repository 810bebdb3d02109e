"""vf-eval's sample panels show tool calls; pass@k for every 0/1 metric."""

import json
import math

import pytest

from verifiers.cli.eval_samples import completion_text
from verifiers.pass_rates import binary_metric_pass_at_k
from verifiers.results import GenerateOutputs


def record(example_id, metrics, error=None):
    return {"example_id": example_id, "reward": 0.0, "metrics": metrics, "error": error}


def test_pass_at_k_for_each_binary_metric_only():
    results = GenerateOutputs([
        record(0, {"correct_answer": 1.0, "length": 12.0, "judge": 1.0}),
        record(0, {"correct_answer": 0.0, "length": 7.0, "judge": 1.0}),
        record(1, {"correct_answer": 0.0, "length": 3.0, "judge": 0.0}),
        record(1, {"correct_answer": 0.0, "length": 5.0, "judge": math.nan}),
        record(1, {"correct_answer": 1.0, "length": 5.0, "judge": 1.0}, error="model_error: 500"),
    ])
    by_metric = binary_metric_pass_at_k(results)
    assert set(by_metric) == {"correct_answer", "judge"}  # length is not 0/1
    # example 0: 1 of 2 correct; example 1: 0 of 2 (the failed rollout is left out)
    assert by_metric["correct_answer"] == {1: pytest.approx(0.25), 2: pytest.approx(0.5)}
    # judge: example 1 has one scored rollout (NaN left out), so k stops at 1
    assert by_metric["judge"] == {1: pytest.approx(0.5)}
    assert binary_metric_pass_at_k(GenerateOutputs([])) == {}


def test_panel_text_shows_tool_calls_and_tool_answers():
    completion = [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "reverse", "arguments": json.dumps({"word": "alpha"})}},
            {"id": "c2", "type": "function", "function": {"name": "reverse", "arguments": "{bad"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ahpla"},
        {"role": "assistant", "content": "x" * 2000},
    ]
    lines = completion_text(completion).splitlines()
    assert lines[0] == "[assistant]"
    assert lines[1] == '  → tool call reverse {"word": "alpha"}'
    assert lines[2] == "  → tool call reverse {bad"
    assert lines[3] == "[tool] ahpla"
    assert lines[4].startswith("[assistant] xxx") and lines[4].endswith(" …") and len(lines[4]) < 700
    assert completion_text("plain text") == "plain text"


def test_vf_eval_prints_tool_calls_and_metric_pass_at_k(tool_eval):
    tool_eval_run, err = tool_eval
    assert "tool call reverse" in err and '"word": "alpha"' in err
    assert "pass@1 correct_answer" in err
    meta = json.loads((tool_eval_run / "metadata.json").read_text())
    by_k = meta["summary"]["pass_at_k_metrics"]["correct_answer"]
    # 4 words x 2 rollouts, 'beta' always wrong, one rollout failed and left out
    assert set(by_k) == {"1"}  # the example with the failed rollout has one left
    assert by_k["1"] == pytest.approx(0.75)
