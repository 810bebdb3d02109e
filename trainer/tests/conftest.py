"""Fixtures for the trainer's tests: a tiny offline chat model, built once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 chat model (hidden 64, 2 layers, 1000-token BPE tokenizer with a ChatML
    + tools template), built offline into a temporary folder in a few seconds."""
    from verifiers_trainer.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def tiny(tiny_model_path: Path) -> tuple[Any, Any]:
    """A fresh ``(model, tokenizer)`` of the tiny model (tests may change its weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    return model, tokenizer


@pytest.fixture
def small_args(tmp_path: Path) -> Any:
    """A factory of small ``GRPOConfig``s for the tiny model (2 prompts x 4 completions, 4-token
    completions, 2 steps, no checkpoints), in this test's temporary folder; keywords override."""
    from verifiers_trainer import GRPOConfig

    def make(**overrides: Any) -> Any:
        base: dict[str, Any] = dict(
            output_dir=str(tmp_path / "run"), per_device_train_batch_size=8, num_generations=4,
            gradient_accumulation_steps=1, max_completion_length=4, max_prompt_length=64,
            learning_rate=1e-3, max_steps=2, warmup_steps=0, lr_scheduler_type="constant",
            beta=0.0, logging_steps=1, save_strategy="no", report_to="none", seed=0, use_cpu=True,
        )
        base.update(overrides)
        return GRPOConfig(**base)

    return make
