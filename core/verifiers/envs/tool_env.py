"""ToolEnv: the model calls Python functions through OpenAI tool calling."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any

from verifiers.envs.multi_turn_env import MultiTurnEnv
from verifiers.types import ChatMessage, Messages, State
from verifiers.utils.tool_utils import (
    ToolArgumentError,
    convert_func_to_oai_tool,
    validate_tool_arguments,
)


class ToolEnv(MultiTurnEnv):
    """The model may call ``tools`` (plain or async functions); each call's result comes
    back as a ``tool`` message, and the episode ends when the model answers without calling
    a tool (or at ``max_turns``).

    Tool schemas come from the functions' signatures and docstrings. Nothing the model
    sends crashes the episode: an unknown tool, arguments that are not a JSON object
    (malformed, or JSON encoded twice), missing or unexpected arguments, and exceptions
    raised by the tool all come back to the model as an error message, and are counted in
    ``state["tool_errors"]``. Sync tools run in a worker thread; ``tool_timeout`` bounds
    each call.
    """

    def __init__(
        self,
        tools: Sequence[Callable[..., Any]] = (),
        max_turns: int = 10,
        tool_timeout: float | None = 60.0,
        max_tool_output_chars: int = 10_000,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("message_type", "chat") != "chat":
            raise ValueError("ToolEnv needs message_type='chat' (tool calls are chat messages).")
        super().__init__(max_turns=max_turns, **kwargs)
        self.tools = list(tools)
        self.tool_map = {t.__name__: t for t in self.tools}
        self.oai_tools = [convert_func_to_oai_tool(t) for t in self.tools] or None
        self.tool_timeout = tool_timeout
        self.max_tool_output_chars = max_tool_output_chars

    def init_state(self, *args: Any, **kwargs: Any) -> State:
        state = super().init_state(*args, **kwargs)
        state.update(tool_calls=0, tool_errors=0)
        return state

    def is_completed(self, messages: Messages, state: State, **kwargs: Any) -> bool:
        if not isinstance(messages, list) or not messages:
            return False
        last = messages[-1]
        return last.get("role") == "assistant" and not last.get("tool_calls")

    async def env_response(
        self, messages: Messages, state: State, **kwargs: Any
    ) -> tuple[list[ChatMessage], State]:
        assert isinstance(messages, list)
        calls = messages[-1].get("tool_calls") or []
        replies = []
        for call in calls:
            content, ok = await self.call_tool(call, state)
            state["tool_calls"] += 1
            if not ok:
                state["tool_errors"] += 1
            replies.append({"role": "tool", "tool_call_id": call.get("id") or "", "content": content})
        return replies, state

    async def call_tool(self, call: dict[str, Any], state: State) -> tuple[str, bool]:
        """Run one tool call; returns ``(message for the model, succeeded?)``."""
        function = call.get("function") or {}
        name = function.get("name")
        if name not in self.tool_map:
            available = ", ".join(self.tool_map) or "none"
            return f"Error: unknown tool {name!r}. Available tools: {available}.", False
        raw = function.get("arguments")
        arguments, problem = _decode_arguments(raw)
        if problem:
            return f"Error: {problem} Call {name} again with a JSON object of arguments.", False
        tool = self.tool_map[name]
        try:
            arguments = validate_tool_arguments(tool, arguments)
        except ToolArgumentError as exc:
            return f"Error: {exc}", False
        try:
            result = await self.invoke_tool(tool, arguments, state)
        except TimeoutError:
            return f"Error: {name} did not finish within {self.tool_timeout} s.", False
        except Exception as exc:
            return f"Error: {name} raised {type(exc).__name__}: {exc}", False
        text = result if isinstance(result, str) else json.dumps(result, default=str)
        if len(text) > self.max_tool_output_chars:
            cut = len(text) - self.max_tool_output_chars
            text = text[: self.max_tool_output_chars] + f"\n... [{cut} more characters cut]"
        return text, True

    async def invoke_tool(
        self, tool: Callable[..., Any], arguments: dict[str, Any], state: State
    ) -> Any:
        """Run one validated tool call. Override to give tools per-rollout resources
        (``state`` is the rollout's): e.g. one persistent interpreter per rollout."""
        if inspect.iscoroutinefunction(tool):
            coro = tool(**arguments)
        else:
            coro = asyncio.to_thread(tool, **arguments)
        if self.tool_timeout:
            return await asyncio.wait_for(coro, self.tool_timeout)
        return await coro


def _decode_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments as a dict, or a problem description for the model."""
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        return {}, f"the arguments are not valid JSON ({exc}): {str(raw)[:200]!r}."
    if isinstance(value, str):
        return {}, "the arguments were a JSON string (encoded twice?), not a JSON object."
    if not isinstance(value, dict):
        return {}, f"the arguments must be a JSON object, got {type(value).__name__}."
    return value, None
