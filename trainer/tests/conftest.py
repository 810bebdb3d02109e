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
