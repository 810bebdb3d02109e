"""SingleTurnEnv: one prompt, one model response."""

from __future__ import annotations

from typing import Any

from verifiers.envs.multi_turn_env import MultiTurnEnv
from verifiers.types import Messages, State


class SingleTurnEnv(MultiTurnEnv):
    """Question in, answer out: the episode ends after the model's first response."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_turns", 1)
        super().__init__(**kwargs)

    def is_completed(self, messages: Messages, state: State, **kwargs: Any) -> bool:
        return state["turn"] >= 1

    def env_response(self, messages: Messages, state: State, **kwargs: Any) -> tuple[Messages, State]:
        return ([] if isinstance(messages, list) else ""), state
