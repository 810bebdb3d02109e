"""Rubrics score rollouts: weighted reward functions over prompt, completion, answer, state."""

from verifiers.rubrics.judge_rubric import JudgeRubric
from verifiers.rubrics.rubric import Rubric
from verifiers.rubrics.rubric_group import RubricGroup
from verifiers.rubrics.tool_rubric import ToolRubric

__all__ = ["JudgeRubric", "Rubric", "RubricGroup", "ToolRubric"]
