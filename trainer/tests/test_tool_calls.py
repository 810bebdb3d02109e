"""Hermes/Qwen-style ``<tool_call>`` blocks parsed into OpenAI tool calls."""

from __future__ import annotations

from verifiers_trainer.inference.tool_calls import parse_tool_calls


def test_tool_call_parser():
    content, calls = parse_tool_calls(
        'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
        '\n<tool_call>\n{"name": "add", "arguments": "{\\"a\\": 3}"}\n</tool_call>'
    )
    assert content == "Let me add."
    assert [c["function"] for c in calls] == [
        {"name": "add", "arguments": '{"a": 1, "b": 2}'}, {"name": "add", "arguments": '{"a": 3}'},
    ]
    assert len({c["id"] for c in calls}) == 2 and all(c["type"] == "function" for c in calls)
    # not JSON, or no name: left in the content, no call
    for text in ("<tool_call>\nnot json\n</tool_call>", '<tool_call>{"arguments": {}}</tool_call>',
                 "no calls at all"):
        assert parse_tool_calls(text) == (text, [])
    # an unclosed call at the end of the output (stopped at eos) still counts
    content, calls = parse_tool_calls('<tool_call>\n{"name": "f", "arguments": {}}')
    assert content == "" and calls[0]["function"] == {"name": "f", "arguments": "{}"}
