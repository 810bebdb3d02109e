"""vf-vllm's argument handling (no server started)."""

from __future__ import annotations

import json

import pytest

from verifiers_trainer.inference.vllm_server import serve_args


def test_defaults_added():
    args = serve_args(["my-model", "--port", "8001"])
    assert args[:4] == ["--model", "my-model", "--port", "8001"]
    backend = json.loads(args[args.index("--weight-transfer-config") + 1])["backend"]
    assert backend == "vf_auto"  # the trainer picks vf_shm or nccl when it connects
    assert args[args.index("--tool-call-parser") + 1] == "hermes"
    assert "--enable-auto-tool-choice" in args


def test_user_choices_win():
    args = serve_args(["--model", "m", "--tool-call-parser", "llama3_json", "--enable-auto-tool-choice",
                       "--weight-transfer-config", '{"backend": "nccl"}'])
    assert args.count("--tool-call-parser") == 1 and "hermes" not in args
    assert args.count("--enable-auto-tool-choice") == 1
    assert args.count("--weight-transfer-config") == 1
    off = serve_args(["--model", "m", "--no-tool-calls"])
    assert "--tool-call-parser" not in off and "--no-tool-calls" not in off


def test_old_flag_dropped_and_model_required():
    assert "--disable-log-requests" not in serve_args(["--model", "m", "--disable-log-requests"])
    with pytest.raises(SystemExit, match="give the model"):
        serve_args(["--port", "8000"])
