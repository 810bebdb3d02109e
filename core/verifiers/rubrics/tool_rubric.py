"""ToolRubric: tool-use metrics (total calls, calls per tool, tool errors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from verifiers.parsers.parser import Parser
from verifiers.rubrics.rubric import Rubric
from verifiers.types import Messages, State


def _tool_call_name(call: Any) -> Any:
    """The function name of a tool call, stored as a dict or as an openai object."""
    function = call.get("function") if isinstance(call, dict) else getattr(call, "function", None)
    if isinstance(function, dict):
        return function.get("name")
    return getattr(function, "name", None)


def count_tool_calls(completion: Messages, name: str | None = None) -> int:
    """Tool calls in the assistant messages of ``completion`` (of tool ``name`` if given)."""
    if isinstance(completion, str):
        return 0
    count = 0
    for message in completion or []:
        role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
        if role != "assistant":
            continue
        calls = message.get("tool_calls") if isinstance(message, dict) else getattr(message, "tool_calls", None)
        for call in calls or []:
            if name is None or _tool_call_name(call) == name:
                count += 1
    return count


class ToolRubric(Rubric):
    """Counts tool use. Reward functions, in verifiers 0.1.x's order: ``total_tool_calls``,
    then ``<tool>_calls`` for each tool, then ``tool_errors`` (``state["tool_errors"]``).

    They are metrics (weight 0 by default); give them weights to reward or penalise tool
    use, e.g. ``ToolRubric(tools, error_weight=-0.1)``, or edit ``reward_weights`` in place
    (``rubric.reward_weights[0] = -0.1`` for total calls).
    """

    def __init__(
        self,
        tools: Sequence[Callable[..., Any]] | None = None,
        parser: Parser | None = None,
        calls_weight: float = 0.0,
        error_weight: float = 0.0,
        per_tool_weight: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(parser=parser, **kwargs)
        from verifiers.utils.tool_utils import convert_func_to_oai_tool

        self.tools = list(tools or [])
        self.tool_names = [t.__name__ for t in self.tools]
        self.oai_tools = [convert_func_to_oai_tool(t) for t in self.tools]
        self.add_reward_func(self.total_tool_calls, calls_weight)
        for tool_name in self.tool_names:
            self.add_reward_func(self.get_tool_call_count_func(tool_name), per_tool_weight)
        self.add_reward_func(self.tool_errors, error_weight)

    async def total_tool_calls(self, completion: Messages) -> float:
        """The number of tool calls across the assistant messages."""
        return float(count_tool_calls(completion))

    async def tool_errors(self, state: State) -> float:
        """The number of tool calls that failed (``state["tool_errors"]``)."""
        return float(state.get("tool_errors", 0))

    def get_tool_call_count_func(self, tool_name: str) -> Callable[..., Any]:
        """A reward function counting calls to ``tool_name`` (named ``<tool>_calls``)."""

        async def tool_call_count_func(completion: Messages) -> float:
            return float(count_tool_calls(completion, tool_name))

        tool_call_count_func.__name__ = f"{tool_name}_calls"
        return tool_call_count_func
