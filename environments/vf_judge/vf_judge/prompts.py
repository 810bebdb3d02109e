"""The policy's system prompt and the judge's template (with load-time validation)."""

from __future__ import annotations

import string

from verifiers.rubrics.judge_rubric import DEFAULT_JUDGE_TEMPLATE

__all__ = ["DEFAULT_JUDGE_TEMPLATE", "DEFAULT_SYSTEM_PROMPT", "TEMPLATE_FIELDS", "check_template"]

DEFAULT_SYSTEM_PROMPT = (
    "Solve the problem. Reason briefly, then state the final answer clearly on the last line."
)

#: Placeholders a judge template may use ({prompt} and {completion} are core aliases).
TEMPLATE_FIELDS = ("question", "answer", "response", "prompt", "completion")


def check_template(template: str) -> str:
    """Check a judge template when the environment is loaded, not on every rollout.

    It must be a ``str.format`` template using only ``{question}``, ``{answer}`` and
    ``{response}`` (or the aliases ``{prompt}``, ``{completion}``), and it must show the
    judge the response. Literal braces are written ``{{`` and ``}}``.
    """
    if not isinstance(template, str) or not template.strip():
        raise ValueError("judge_template must be a non-empty string.")
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(
            f"judge_template is not a valid format string ({exc}); write literal braces as "
            "{{ and }}."
        ) from exc
    unknown = sorted({n for n in names if n not in TEMPLATE_FIELDS})
    if unknown:
        raise ValueError(
            f"judge_template uses unknown placeholder(s) {unknown}; available: {{question}}, "
            "{answer}, {response} (aliases {prompt}, {completion}). Write literal braces as "
            "{{ and }}."
        )
    if not {"response", "completion"} & set(names):
        raise ValueError(
            "judge_template never shows the judge the response: include {response}."
        )
    return template
