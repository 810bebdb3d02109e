"""verifiers 0.1.x's module path for :class:`MultiTurnEnv`."""

from verifiers.envs.multi_turn_env import MultiTurnEnv

__all__ = ["MultiTurnEnv"]
