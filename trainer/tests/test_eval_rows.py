"""vf-train's evaluation rows: a single answer is kept as its text; a tool conversation
keeps its calls and the tool's replies, so the report's samples show what the model did."""

from __future__ import annotations

import json

from verifiers_trainer.cli.evaluation import _text


def test_a_single_answer_is_its_text():
    assert _text([{"role": "assistant", "content": "3 + 4 = \\boxed{7}"}]) == "3 + 4 = \\boxed{7}"
    assert _text("plain completion") == "plain completion"


def test_a_tool_conversation_shows_the_call_and_the_reply():
    completion = [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "python", "arguments": json.dumps({"code": "print(287 * 33)"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "9471"},
        {"role": "assistant", "content": "\\boxed{9471}"},
    ]
    text = _text(completion)
    assert text.splitlines() == [
        "[assistant]",
        '  → tool call python {"code": "print(287 * 33)"}',
        "[tool] 9471",
        "[assistant] \\boxed{9471}",
    ]
