"""TeacherGRPOConfig: ``GRPOConfig`` plus the settings of the adaptive-teaching protocol.

ATLAS's documented examples pass these fields to ``GRPOConfig`` itself
(``GRPOConfig(..., max_probe_tokens=50)``); that builds a ``TeacherGRPOConfig``, so such
code runs unchanged. ``TeacherGRPOTrainer`` also takes a plain ``GRPOConfig``: the teaching
settings then keep their defaults (:func:`teaching_settings`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from verifiers_trainer.grpo.config import GRPOConfig, register_extension
from verifiers_trainer.teacher.templates import (
    STUDENT_BASELINE_TEMPLATE,
    STUDENT_DIAGNOSTIC_TEMPLATE,
    STUDENT_WITH_TEACHING_TEMPLATE,
    TEACHER_ADAPTIVE_TEMPLATE,
    TEMPLATE_FIELDS,
    TeachingTemplates,
    check_template,
)

__all__ = ["TEACHING_FIELDS", "TeacherGRPOConfig", "teaching_settings"]


@register_extension
@dataclass
class TeacherGRPOConfig(GRPOConfig):
    """A ``GRPOConfig`` with the teaching settings of ``TeacherGRPOTrainer`` (each checked
    at construction; a template must contain exactly its placeholders, literal braces
    written ``{{ }}``)."""

    max_probe_tokens: int = field(
        default=50,
        metadata={"help": "Teaching: tokens of the student's diagnostic probe; >= 1."},
    )
    student_diagnostic_template: str = field(
        default=STUDENT_DIAGNOSTIC_TEMPLATE,
        metadata={"help": "Teaching: the student's probe prompt (one user message); must "
                  "contain {question}."},
    )
    teacher_adaptive_template: str = field(
        default=TEACHER_ADAPTIVE_TEMPLATE,
        metadata={"help": "Teaching: the teacher's prompt; must contain {question} and "
                  "{approach} (the student's probe)."},
    )
    student_with_teaching_template: str = field(
        default=STUDENT_WITH_TEACHING_TEMPLATE,
        metadata={"help": "Teaching: the student's prompt given a teaching; must contain "
                  "{question} and {teaching}."},
    )
    student_baseline_template: str = field(
        default=STUDENT_BASELINE_TEMPLATE,
        metadata={"help": "Teaching: the student's prompt without teaching; must contain "
                  "{question}."},
    )
    student_max_tokens: int | None = field(
        default=None,
        metadata={"help": "Teaching: tokens of each student solution; >= 1, or None for "
                  "max_completion_length."},
    )
    student_temperature: float = field(
        default=0.0,
        metadata={"help": "Teaching: the student's sampling temperature; >= 0 (0: greedy, "
                  "so its answers depend only on the teaching)."},
    )
    student_vllm_server_host: str = field(
        default="127.0.0.1", metadata={"help": "Teaching: host of the student's vf-vllm server."}
    )
    student_vllm_server_port: int | None = field(
        default=None,
        metadata={"help": "Teaching: port of a vf-vllm server serving the student, in [1, "
                  "65535]; None generates with the student in process."},
    )

    def __post_init__(self) -> None:
        check_teaching(self)  # first, like GRPOConfig's own checks
        super().__post_init__()

    @property
    def templates(self) -> TeachingTemplates:
        """The four templates, as the protocol uses them."""
        return TeachingTemplates.from_config(self)


#: The teaching settings: the fields ``TeacherGRPOConfig`` adds to ``GRPOConfig``.
TEACHING_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(TeacherGRPOConfig)
    if f.name not in {g.name for g in dataclasses.fields(GRPOConfig)})

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TeacherGRPOConfig)
                             if f.name in TEACHING_FIELDS}


def teaching_settings(config: GRPOConfig) -> SimpleNamespace:
    """The teaching settings of ``config`` (its own for a ``TeacherGRPOConfig``, the
    defaults for a plain ``GRPOConfig``), as attributes."""
    if isinstance(config, TeacherGRPOConfig):
        return SimpleNamespace(**{name: getattr(config, name) for name in TEACHING_FIELDS})
    return SimpleNamespace(**_DEFAULTS)


def check_teaching(settings: Any) -> None:
    """Raise ``ValueError`` naming the field and the rule for a teaching setting out of bounds."""
    def at_least(name: str, low: float, none_ok: bool = False) -> None:
        value = getattr(settings, name)
        if value is None and none_ok:
            return
        if value is None or isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            extra = ", or None" if none_ok else ""
            raise ValueError(f"{name} must be >= {low}{extra}; got {value!r}.")

    at_least("max_probe_tokens", 1)
    for name in TEMPLATE_FIELDS:
        check_template(name, getattr(settings, name))
    at_least("student_max_tokens", 1, none_ok=True)
    at_least("student_temperature", 0)
    port = settings.student_vllm_server_port
    if port is not None and not (isinstance(port, int) and 1 <= port <= 65535):
        raise ValueError(f"student_vllm_server_port must be in [1, 65535], or None; got {port!r}.")
