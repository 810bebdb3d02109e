"""The four prompts of the teaching protocol, and how they are checked and filled in.

Each template is the text of one user message; the chat template of the model that reads
it is applied once, by its tokenizer (in the inference server or the in-process engine).
Placeholders are ``str.format`` fields; write a literal brace as ``{{`` or ``}}``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

STUDENT_DIAGNOSTIC_TEMPLATE = (
    "Question: {question}\n\n"
    "Before solving it, briefly describe how you would approach this problem and what you "
    "find unclear. Do not solve it yet."
)
TEACHER_ADAPTIVE_TEMPLATE = (
    "You are teaching a student.\n\n"
    "Question: {question}\n\n"
    "The student's approach: {approach}\n\n"
    "Write short, targeted guidance for this student: correct what the approach gets wrong "
    "and point out the key step. If the approach is sound, say so briefly. Do not just give "
    "the final answer."
)
STUDENT_WITH_TEACHING_TEMPLATE = (
    "Question: {question}\n\n"
    "A teacher's guidance: {teaching}\n\n"
    "Solve the problem. Give the final answer inside <solution></solution> tags, e.g. "
    "<solution>42</solution>."
)
STUDENT_BASELINE_TEMPLATE = (
    "Question: {question}\n\n"
    "Solve the problem. Give the final answer inside <solution></solution> tags, e.g. "
    "<solution>42</solution>."
)

#: Config field name -> the placeholders its template must contain (and the only ones allowed).
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "student_diagnostic_template": ("question",),
    "teacher_adaptive_template": ("question", "approach"),
    "student_with_teaching_template": ("question", "teaching"),
    "student_baseline_template": ("question",),
}


def check_template(name: str, template: Any) -> None:
    """Raise ``ValueError`` unless ``template`` is a format string with exactly the
    placeholders ``TEMPLATE_FIELDS[name]`` (each at least once)."""
    required = TEMPLATE_FIELDS[name]
    wanted = ", ".join("{" + field + "}" for field in required)
    if not isinstance(template, str):
        raise ValueError(f"{name} must be a string with the placeholders {wanted}; "
                         f"got {type(template).__name__}.")
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ValueError(f"{name} is not a valid format string ({exc}). Write literal braces "
                         "as {{ and }}.") from exc
    unknown = sorted(fields - set(required))
    if unknown:
        shown = ", ".join("{" + field + "}" for field in unknown)
        raise ValueError(f"{name} has unknown placeholders {shown}; it may use only {wanted} "
                         "(write literal braces as {{ and }}).")
    missing = [field for field in required if field not in fields]
    if missing:
        shown = ", ".join("{" + field + "}" for field in missing)
        raise ValueError(f"{name} must contain {wanted}; {shown} is missing.")


@dataclass(frozen=True)
class TeachingTemplates:
    """The protocol's four user-message templates (defaults above)."""

    student_diagnostic: str = STUDENT_DIAGNOSTIC_TEMPLATE
    teacher_adaptive: str = TEACHER_ADAPTIVE_TEMPLATE
    student_with_teaching: str = STUDENT_WITH_TEACHING_TEMPLATE
    student_baseline: str = STUDENT_BASELINE_TEMPLATE

    def __post_init__(self) -> None:
        for name in TEMPLATE_FIELDS:
            check_template(name, getattr(self, name.removesuffix("_template")))

    @classmethod
    def from_config(cls, args: Any) -> TeachingTemplates:
        """The templates of a ``TeacherGRPOConfig`` (its ``*_template`` fields), or of any
        object with those attributes."""
        return cls(**{name.removesuffix("_template"): getattr(args, name) for name in TEMPLATE_FIELDS})

    def diagnostic(self, question: str) -> list[dict[str, str]]:
        return _user(self.student_diagnostic.format(question=question))

    def teacher(self, question: str, approach: str) -> list[dict[str, str]]:
        return _user(self.teacher_adaptive.format(question=question, approach=approach))

    def with_teaching(self, question: str, teaching: str) -> list[dict[str, str]]:
        return _user(self.student_with_teaching.format(question=question, teaching=teaching))

    def baseline(self, question: str) -> list[dict[str, str]]:
        return _user(self.student_baseline.format(question=question))


def _user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]
