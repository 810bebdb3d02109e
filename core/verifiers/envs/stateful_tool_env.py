"""StatefulToolEnv: tools whose calls get hidden, per-rollout arguments."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from verifiers.envs.tool_env import ToolEnv
from verifiers.types import Messages, State
from verifiers.utils.async_utils import maybe_await


class StatefulToolEnv(ToolEnv):
    """A :class:`ToolEnv` whose subclasses implement ``update_tool_args(tool_args,
    messages, state, **kwargs) -> dict``, called before each tool call: it may add
    arguments the model does not write (a sandbox id, a session handle kept in ``state``)
    and update ``state`` in place (verifiers 0.1.x's hook; plain or ``async def``)."""

    @abstractmethod
    def update_tool_args(
        self, tool_args: dict[str, Any], messages: Messages, state: State, **kwargs: Any
    ) -> dict[str, Any]:
        """The arguments the call runs with."""

    async def prepare_tool_args(
        self, tool_name: str, tool_args: dict[str, Any], messages: Messages, state: State,
        **kwargs: Any,
    ) -> dict[str, Any]:
        updated = await maybe_await(self.update_tool_args(tool_args, messages, state, **kwargs))
        if not isinstance(updated, dict):
            raise TypeError(
                f"{type(self).__name__}.update_tool_args must return the arguments as a dict, "
                f"got {type(updated).__name__}."
            )
        return updated
