"""verifiers 0.1.x's module path for :class:`SingleTurnEnv`."""

from verifiers.envs.single_turn_env import SingleTurnEnv

__all__ = ["SingleTurnEnv"]
