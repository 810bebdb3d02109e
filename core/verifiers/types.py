"""Shared type aliases and small records.

A *message* is an OpenAI chat message dict (``{"role": ..., "content": ...}``); a list of
them is a conversation. Environments with ``message_type="completion"`` use plain strings
instead. A *state* is a JSON-serialisable dict that a rollout carries from start to end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias

ChatMessage: TypeAlias = dict[str, Any]
Messages: TypeAlias = str | list[ChatMessage]
MessageType: TypeAlias = Literal["chat", "completion"]
State: TypeAlias = dict[str, Any]
Info: TypeAlias = dict[str, Any]
SamplingArgs: TypeAlias = dict[str, Any]
RewardFunc: TypeAlias = Callable[..., float | Awaitable[float]]
RolloutScore: TypeAlias = dict[str, float]
"""``{"reward": weighted sum, <reward function name>: value, ...}``."""
