"""Environments: the interaction loops."""

from verifiers.envs.env_group import EnvGroup
from verifiers.envs.environment import Environment
from verifiers.envs.multi_turn_env import MultiTurnEnv
from verifiers.envs.single_turn_env import SingleTurnEnv
from verifiers.envs.stateful_tool_env import StatefulToolEnv
from verifiers.envs.textarena_env import TextArenaEnv
from verifiers.envs.tool_env import ToolEnv

__all__ = [
    "EnvGroup", "Environment", "MultiTurnEnv", "SingleTurnEnv", "StatefulToolEnv",
    "TextArenaEnv", "ToolEnv",
]
