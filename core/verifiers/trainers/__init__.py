"""The trainers live in the separate ``vf-trainer`` package (torch, transformers,
accelerate, vLLM). ``from verifiers.trainers import GRPOTrainer`` resolves to it lazily so
that ``import verifiers`` stays light."""

from __future__ import annotations

from typing import Any

TRAINER_NAMES = (
    "GRPOConfig",
    "GRPOTrainer",
    "TeacherGRPOConfig",
    "TeacherGRPOTrainer",
    "AdaptiveTeachingReward",
    "grpo_defaults",
    "lora_defaults",
    "get_model_and_tokenizer",
)

__all__ = list(TRAINER_NAMES)


def load_trainer_attr(name: str) -> Any:
    try:
        import verifiers_trainer
    except ImportError as exc:
        raise ImportError(
            f"{name} is part of the trainer package, which is not installed. Install it with "
            "`pip install -e trainer` from a checkout of this repository (or "
            "`pip install vf-trainer`); it brings torch, transformers, accelerate, "
            "peft and vLLM."
        ) from exc
    try:
        return getattr(verifiers_trainer, name)
    except AttributeError:
        raise ImportError(
            f"The installed vf-trainer has no {name}; upgrade it."
        ) from None


def __getattr__(name: str) -> Any:
    if name in TRAINER_NAMES:
        return load_trainer_attr(name)
    raise AttributeError(f"module 'verifiers.trainers' has no attribute {name!r}")
