"""benchmarks/gpu_check.py in its reduced CPU mode: every section runs and its checks pass
(the script itself is meant for a CUDA GPU; this keeps its logic working)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def test_gpu_check_runs_on_cpu_with_a_tiny_model(tmp_path):
    pytest.importorskip("peft")
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--device", "cpu", "--tiny", "--steps", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["failures"] == []
    assert report["engine"]["greedy_equals_model_generate"]
    assert report["engine"]["distinct_tokens_in_greedy_output"] > 5
    for mode in ("full", "lora"):
        assert report["gradients"][mode]["fp32"]["grad_cosine"] > 0.999
        grpo = report["grpo"][mode]
        assert grpo["measured_steps"] == 1 and grpo["generated_tokens_per_s"] > 0
        assert grpo["trainer_tokens_per_s"] > 0 and grpo["finite_losses"]
    assert report["grpo"]["lora"]["trainable_parameters"] < report["grpo"]["lora"]["parameters"]
    for mode in ("full", "lora"):  # vf.GRPOTrainer itself (openai is installed here)
        assert report["trainer"][mode]["steps"] == 2 and report["trainer"][mode]["losses_finite"]
