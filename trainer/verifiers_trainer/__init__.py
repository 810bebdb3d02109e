"""vf-trainer: GRPO trainers and the inference they need.

Public names load on first use, so ``import verifiers_trainer`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "AdaptiveTeachingReward": "verifiers_trainer.teacher.reward",
    "GRPOConfig": "verifiers_trainer.grpo.config",
    "GRPOTrainer": "verifiers_trainer.grpo.trainer",
    "grpo_defaults": "verifiers_trainer.grpo.config",
    "lora_defaults": "verifiers_trainer.grpo.config",
    "TeacherGRPOConfig": "verifiers_trainer.teacher.config",
    "TeacherGRPOTrainer": "verifiers_trainer.teacher.trainer",
    "InProcessEngine": "verifiers_trainer.inference.engine",
    "VLLMClient": "verifiers_trainer.inference.vllm_client",
    "VLLMServer": "verifiers_trainer.inference.vllm_launcher",
    "VLLMServers": "verifiers_trainer.inference.vllm_servers",
    "serve_locally": "verifiers_trainer.inference.local",
    "build_tiny_model": "verifiers_trainer.models.tiny",
    "default_model_path": "verifiers_trainer.models.smollm2",
    "get_model_and_tokenizer": "verifiers_trainer.models.loading",
}

__all__ = sorted(_EXPORTS)

#: Modules defining subclasses of ``GRPOConfig`` that ``GRPOConfig(...)`` builds when given
#: their fields (see ``verifiers_trainer.grpo.config.register_extension``).
CONFIG_EXTENSIONS: tuple[str, ...] = ("verifiers_trainer.teacher.config",)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'verifiers_trainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
