"""Shared type aliases and the names verifiers 0.1.x exposes from ``verifiers.types``.

A *message* is an OpenAI chat message dict (``{"role": ..., "content": ...}``); a list of
them is a conversation. Environments with ``message_type="completion"`` use plain strings
instead. A *state* is a dict that a rollout carries from start to end.

The record types (``Rollout``, ``Turn``, ``GenerateInputs``, ``GenerateOutputs``,
``ProcessedOutputs``, ``RolloutScore``, ``RolloutScores``) load on first use, so importing this module stays
light.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

ChatMessage: TypeAlias = dict[str, Any]
Message: TypeAlias = str | ChatMessage
Messages: TypeAlias = str | list[ChatMessage]
MessageType: TypeAlias = Literal["chat", "completion"]
State: TypeAlias = dict[str, Any]
Info: TypeAlias = dict[str, Any]
SamplingArgs: TypeAlias = dict[str, Any]
RewardFunc: TypeAlias = Callable[..., float | Awaitable[float]]

_LAZY: dict[str, str] = {
    "GenerateInputs": "verifiers.inputs",
    "GenerateOutputs": "verifiers.results",
    "ProcessedOutputs": "verifiers.processing",
    "Rollout": "verifiers.rollout",
    "RolloutScore": "verifiers.rubrics.scores",
    "RolloutScores": "verifiers.rubrics.scores",
    "Turn": "verifiers.rollout",
}

def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'verifiers.types' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # for type checkers and IDEs
    from verifiers.inputs import GenerateInputs
    from verifiers.processing import ProcessedOutputs
    from verifiers.results import GenerateOutputs
    from verifiers.rollout import Rollout, Turn
    from verifiers.rubrics.scores import RolloutScore, RolloutScores

__all__ = [
    "ChatMessage", "GenerateInputs", "GenerateOutputs", "Info", "Message", "MessageType",
    "Messages", "ProcessedOutputs", "RewardFunc", "Rollout", "RolloutScore", "RolloutScores",
    "SamplingArgs", "State", "Turn",
]
