"""Adaptive teaching: a teacher model (the one trained) writes guidance for a frozen student;
the reward is how much the guidance improves the student.

``TeacherGRPOTrainer`` (``trainer.py``, settings in ``TeacherGRPOConfig``: ``config.py``) runs the protocol of ``TeachingEnv`` (``env.py``)
with GRPO; ``AdaptiveTeachingReward`` (``reward.py``) scores it; ``Student`` (``student.py``)
answers through any OpenAI-compatible client; ``templates.py`` holds the four prompts and
``extraction.py`` reads the student's answers. Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "AdaptiveTeachingReward": "verifiers_trainer.teacher.reward",
    "Placement": "verifiers_trainer.teacher.student",
    "Student": "verifiers_trainer.teacher.student",
    "TeacherGRPOConfig": "verifiers_trainer.teacher.config",
    "TeacherGRPOTrainer": "verifiers_trainer.teacher.trainer",
    "TeachingEnv": "verifiers_trainer.teacher.env",
    "TeachingOutcome": "verifiers_trainer.teacher.reward",
    "TeachingTemplates": "verifiers_trainer.teacher.templates",
    "adaptive_teaching_reward": "verifiers_trainer.teacher.reward",
    "extract_solution": "verifiers_trainer.teacher.extraction",
    "teaching_metrics": "verifiers_trainer.teacher.reward",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'verifiers_trainer.teacher' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
