"""ToolEnv: the model calls Python functions through OpenAI tool calling."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any

from verifiers.envs.multi_turn_env import MultiTurnEnv
from verifiers.envs.tool_call import tool_calls_of
from verifiers.types import ChatMessage, Messages, State
from verifiers.utils.async_utils import maybe_await
from verifiers.utils.tool_utils import (
    ToolArgumentError,
    convert_func_to_oai_tool,
    validate_tool_arguments,
)


class ToolEnv(MultiTurnEnv):
    """The model may call ``tools`` (plain or async functions); each call's result comes
    back as a ``tool`` message, and the episode ends when the model answers without calling
    a tool (or at ``max_turns``; a tool call in the last allowed turn is not executed).

    Tool schemas come from the functions' signatures and docstrings. Nothing the model
    sends crashes the episode: an unknown tool, arguments that are not a JSON object
    (malformed, or JSON encoded twice), missing or unexpected arguments, and exceptions
    raised by the tool all come back to the model as an error message, and are counted in
    ``state["tool_errors"]``. ``error_formatter(exception)`` words the message for a tool
    that raised (default: ``"Error: <tool> raised <type>: <message>"``). Sync tools run in
    a worker thread; ``tool_timeout`` bounds each call.

    Hooks, as in verifiers 0.1.x: ``call_tool(tool_name, tool_args, tool_call_id,
    **kwargs)`` returns the tool message; :meth:`invoke_tool` runs one validated call with
    the rollout's state (for per-rollout resources).
    """

    def __init__(
        self,
        tools: Sequence[Callable[..., Any]] | None = None,
        max_turns: int = 10,
        error_formatter: Callable[[Exception], str] | None = None,
        tool_timeout: float | None = 60.0,
        max_tool_output_chars: int = 10_000,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("message_type", "chat") != "chat":
            raise ValueError("ToolEnv needs message_type='chat' (tool calls are chat messages).")
        if error_formatter is not None and not callable(error_formatter):
            raise TypeError("error_formatter must be a function of the exception, returning text.")
        self.tools = list(tools or [])
        self.tool_map = {t.__name__: t for t in self.tools}
        self.error_formatter = error_formatter
        self.tool_timeout = tool_timeout
        self.max_tool_output_chars = max_tool_output_chars
        kwargs.setdefault("oai_tools", [convert_func_to_oai_tool(t) for t in self.tools] or None)
        super().__init__(max_turns=max_turns, **kwargs)

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
        replies = []
        for call in tool_calls_of(messages[-1]):
            state["tool_calls"] = state.get("tool_calls", 0) + 1
            name = call.function.name
            arguments, problem = _decode_arguments(call.function.arguments)
            if problem:
                state["tool_errors"] = state.get("tool_errors", 0) + 1
                replies.append(_tool_message(
                    f"Error: {problem} Call {name} again with a JSON object of arguments.",
                    call.get("id")))
                continue
            arguments = await self.prepare_tool_args(name, arguments, messages, state, **kwargs)
            replies.append(await self._call_tool(name, arguments, call.get("id") or "", state))
        return replies, state

    async def prepare_tool_args(
        self, tool_name: str, tool_args: dict[str, Any], messages: Messages, state: State,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The arguments a call runs with (``StatefulToolEnv`` adds hidden ones here)."""
        return tool_args

    async def _call_tool(
        self, name: str, arguments: dict[str, Any], call_id: str, state: State
    ) -> ChatMessage:
        if _takes_state(type(self).call_tool):
            return await maybe_await(self.call_tool(name, arguments, call_id, state=state))
        return await maybe_await(self.call_tool(name, arguments, call_id))

    async def call_tool(
        self, tool_name: str, tool_args: dict[str, Any], tool_call_id: str, **kwargs: Any
    ) -> ChatMessage:
        """Run one tool call and return its ``tool`` message (verifiers 0.1.x's hook).

        ``state=`` (the rollout's state, passed by :meth:`env_response`) counts failures in
        ``state["tool_errors"]`` and reaches :meth:`invoke_tool`."""
        given = kwargs.get("state")
        state: State = given if given is not None else {}
        content, ok = await self._run_tool(tool_name, tool_args, state)
        if not ok:
            state["tool_errors"] = state.get("tool_errors", 0) + 1
        return _tool_message(content, tool_call_id)

    async def _run_tool(self, name: str, arguments: dict[str, Any], state: State) -> tuple[str, bool]:
        """``(message for the model, succeeded?)`` for one decoded call."""
        if name not in self.tool_map:
            available = ", ".join(self.tool_map) or "none"
            return f"Error: unknown tool {name!r}. Available tools: {available}.", False
        tool = self.tool_map[name]
        try:
            arguments = validate_tool_arguments(tool, arguments)
        except ToolArgumentError as exc:
            return f"Error: {exc}", False
        try:
            result = await self.invoke_tool(tool, arguments, state)
        except TimeoutError as exc:
            if self.error_formatter is not None:
                return self.error_formatter(exc), False
            return f"Error: {name} did not finish within {self.tool_timeout} s.", False
        except Exception as exc:
            if self.error_formatter is not None:
                return self.error_formatter(exc), False
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


def _tool_message(content: str, tool_call_id: str | None) -> ChatMessage:
    return {"role": "tool", "content": content, "tool_call_id": tool_call_id or ""}


def _takes_state(method: Callable[..., Any]) -> bool:
    params = inspect.signature(method).parameters.values()
    return any(p.name == "state" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


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
