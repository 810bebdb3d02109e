"""verifiers: environments for reinforcement learning of language models.

``import verifiers as vf`` is cheap: the public names below load on first use (no openai,
datasets, torch or transformers import until needed). The trainer names resolve to the
separate ``vf-trainer`` package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # parsers
    "Parser": "verifiers.parsers.parser",
    "XMLParser": "verifiers.parsers.xml_parser",
    "ThinkParser": "verifiers.parsers.think_parser",
    # rubrics
    "Rubric": "verifiers.rubrics.rubric",
    "RubricGroup": "verifiers.rubrics.rubric_group",
    "JudgeRubric": "verifiers.rubrics.judge_rubric",
    "ToolRubric": "verifiers.rubrics.tool_rubric",
    "MathRubric": "verifiers.rubrics.math_rubric",
    "RolloutScore": "verifiers.rubrics.scores",
    "RolloutScores": "verifiers.rubrics.scores",
    # environments
    "Environment": "verifiers.envs.environment",
    "MultiTurnEnv": "verifiers.envs.multi_turn_env",
    "SingleTurnEnv": "verifiers.envs.single_turn_env",
    "ToolEnv": "verifiers.envs.tool_env",
    "StatefulToolEnv": "verifiers.envs.stateful_tool_env",
    "TextArenaEnv": "verifiers.envs.textarena_env",
    "EnvGroup": "verifiers.envs.env_group",
    # records, results and processing
    "Rollout": "verifiers.rollout",
    "Turn": "verifiers.rollout",
    "GenerateInputs": "verifiers.inputs",
    "GenerateOutputs": "verifiers.results",
    "ProcessedOutputs": "verifiers.processing",
    # types (verifiers 0.1.x's names)
    "ChatMessage": "verifiers.types",
    "Info": "verifiers.types",
    "Messages": "verifiers.types",
    "RewardFunc": "verifiers.types",
    "SamplingArgs": "verifiers.types",
    "State": "verifiers.types",
    # loading
    "load_environment": "verifiers.loading",
    "list_environments": "verifiers.loading",
    "EnvironmentNotFoundError": "verifiers.loading",
    # clients
    "RetryPolicy": "verifiers.clients",
    "ModelRequestError": "verifiers.clients",
    "MultiServerClient": "verifiers.multi_client",
    "ServerUnreachableError": "verifiers.clients",
    # helpers
    "extract_boxed_answer": "verifiers.utils.data_utils",
    "extract_hash_answer": "verifiers.utils.data_utils",
    "load_example_dataset": "verifiers.utils.data_utils",
    "convert_func_to_oai_tool": "verifiers.utils.tool_utils",
    "ToolArgumentError": "verifiers.utils.tool_utils",
    "validate_tool_arguments": "verifiers.utils.tool_utils",
}

_TRAINER_EXPORTS = (
    "GRPOConfig",
    "GRPOTrainer",
    "TeacherGRPOConfig",
    "TeacherGRPOTrainer",
    "AdaptiveTeachingReward",
    "grpo_defaults",
    "lora_defaults",
    "get_model_and_tokenizer",
)

__all__ = sorted([*_EXPORTS, *_TRAINER_EXPORTS])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _TRAINER_EXPORTS:
        from verifiers.trainers import load_trainer_attr

        return load_trainer_attr(name)
    raise AttributeError(f"module 'verifiers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # for type checkers and IDEs
    from verifiers.clients import ModelRequestError, RetryPolicy, ServerUnreachableError
    from verifiers.envs.env_group import EnvGroup
    from verifiers.envs.environment import Environment
    from verifiers.envs.multi_turn_env import MultiTurnEnv
    from verifiers.envs.single_turn_env import SingleTurnEnv
    from verifiers.envs.stateful_tool_env import StatefulToolEnv
    from verifiers.envs.textarena_env import TextArenaEnv
    from verifiers.envs.tool_env import ToolEnv
    from verifiers.inputs import GenerateInputs
    from verifiers.loading import EnvironmentNotFoundError, list_environments, load_environment
    from verifiers.multi_client import MultiServerClient
    from verifiers.parsers.parser import Parser
    from verifiers.parsers.think_parser import ThinkParser
    from verifiers.parsers.xml_parser import XMLParser
    from verifiers.processing import ProcessedOutputs
    from verifiers.results import GenerateOutputs
    from verifiers.rollout import Rollout, Turn
    from verifiers.rubrics.judge_rubric import JudgeRubric
    from verifiers.rubrics.math_rubric import MathRubric
    from verifiers.rubrics.rubric import Rubric
    from verifiers.rubrics.rubric_group import RubricGroup
    from verifiers.rubrics.scores import RolloutScore, RolloutScores
    from verifiers.rubrics.tool_rubric import ToolRubric
    from verifiers.types import (
        ChatMessage,
        Info,
        Messages,
        RewardFunc,
        SamplingArgs,
        State,
    )
    from verifiers.utils.data_utils import (
        extract_boxed_answer,
        extract_hash_answer,
        load_example_dataset,
    )
    from verifiers.utils.tool_utils import (
        ToolArgumentError,
        convert_func_to_oai_tool,
        validate_tool_arguments,
    )
