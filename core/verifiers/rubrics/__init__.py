"""Rubrics score rollouts: weighted reward functions over prompt, completion, answer, state."""

from verifiers.rubrics.judge_rubric import JudgeRubric
from verifiers.rubrics.rubric import Rubric
from verifiers.rubrics.rubric_group import RubricGroup
from verifiers.rubrics.scores import RolloutScore, RolloutScores
from verifiers.rubrics.tool_rubric import ToolRubric


def __getattr__(name: str):  # MathRubric loads lazily (math-verify is optional)
    if name == "MathRubric":
        from verifiers.rubrics.math_rubric import MathRubric

        return MathRubric
    raise AttributeError(f"module 'verifiers.rubrics' has no attribute {name!r}")


__all__ = [
    "JudgeRubric",
    "MathRubric",
    "RolloutScore",
    "RolloutScores",
    "Rubric",
    "RubricGroup",
    "ToolRubric",
]
