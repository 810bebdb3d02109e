"""ToolRubric: tool-use metrics (calls per tool, total calls, tool errors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from verifiers.parsers.parser import Parser
from verifiers.rubrics.rubric import Rubric
from verifiers.types import Messages, State


def count_tool_calls(completion: Messages, name: str | None = None) -> int:
    if isinstance(completion, str):
        return 0
    count = 0
    for message in completion:
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            if name is None or function.get("name") == name:
                count += 1
    return count


class ToolRubric(Rubric):
    """Counts tool use: ``total_tool_calls``, ``tool_errors`` and ``<tool>_calls``.

    These are metrics (weight 0 by default); give them weights to reward or penalise tool
    use, e.g. ``ToolRubric(tools, error_weight=-0.1)``.
    """

    def __init__(
        self,
        tools: Sequence[Callable[..., Any]] = (),
        parser: Parser | None = None,
        calls_weight: float = 0.0,
        error_weight: float = 0.0,
        per_tool_weight: float = 0.0,
    ) -> None:
        super().__init__(parser=parser)
        self.tool_names = [t.__name__ for t in tools]

        def total_tool_calls(completion: Messages) -> float:
            return float(count_tool_calls(completion))

        def tool_errors(state: State) -> float:
            return float(state.get("tool_errors", 0))

        self.add_reward_func(total_tool_calls, calls_weight)
        self.add_reward_func(tool_errors, error_weight)
        for tool_name in self.tool_names:
            self.add_reward_func(self._per_tool(tool_name), per_tool_weight)

    @staticmethod
    def _per_tool(tool_name: str) -> Callable[..., float]:
        def calls(completion: Messages) -> float:
            return float(count_tool_calls(completion, tool_name))

        calls.__name__ = f"{tool_name}_calls"
        return calls
