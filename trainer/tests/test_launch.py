"""Launch checks that need no second process: a multi-process launch on CPU gets use_cpu,
a DeepSpeed launch config's precision wins over the GRPOConfig's, and a launch whose
processes each run alone is refused (the two-process runs are in test_distributed.py)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from verifiers_trainer.grpo import launch


def config(**values):
    return SimpleNamespace(**{"use_cpu": False, "bf16": False, "fp16": False, **values})


@pytest.mark.skipif(torch.cuda.is_available(), reason="GPUs run one process each")
def test_several_processes_on_cpu_get_use_cpu(monkeypatch, caplog):
    monkeypatch.setenv("WORLD_SIZE", "2")
    c = config()
    with caplog.at_level(logging.WARNING):
        launch.configure(c, frozenset())
    assert c.use_cpu is True and "setting use_cpu=True" in caplog.text
    monkeypatch.setenv("WORLD_SIZE", "1")
    c = config()
    launch.configure(c, frozenset())
    assert c.use_cpu is False


def test_the_deepspeed_launch_config_decides_the_precision(monkeypatch, caplog):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    c = config()
    with caplog.at_level(logging.WARNING):
        launch.configure(c, frozenset())
    assert (c.bf16, c.fp16) == (True, False) and "asks for mixed_precision=bf16" in caplog.text
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    c = config(bf16=True)
    launch.configure(c, frozenset({"bf16"}))
    assert (c.bf16, c.fp16) == (False, False)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")  # other launches: the GRPOConfig's
    c = config(bf16=True)
    launch.configure(c, frozenset({"bf16"}))
    assert c.bf16 is True


def test_processes_that_each_run_alone_are_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="would train 2 separate models into the same output_dir"):
        launch.check_processes(SimpleNamespace(num_processes=1))
    launch.check_processes(SimpleNamespace(num_processes=2))
