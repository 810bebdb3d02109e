"""Chat templates that drop an assistant message's tool calls get them written into its
content, in the ``<tool_call>`` form the model wrote; templates that show them are left alone."""

from __future__ import annotations

import copy
import json

from verifiers.processing import process_env_results
from verifiers.utils.chat_template import renders_tool_calls, tool_call_text, tool_calls_as_text

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "python", "arguments": json.dumps({"code": "print(214 * 37)"})}}
BLOCK = '<tool_call>{"name": "python", "arguments": {"code": "print(214 * 37)"}}</tool_call>'
CONVERSATION = [
    {"role": "user", "content": "What is 214 x 37?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "7918"},
    {"role": "assistant", "content": "\\boxed{7918}"},
]
# A ChatML template that shows tool calls (Qwen2.5's way, shortened).
SHOWS_CALLS = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% for c in m.get('tool_calls') or [] %}<tool_call>{{ c['function']['name'] }} "
    "{{ c['function']['arguments'] }}</tool_call>{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_that_drops_calls_gets_them_in_the_content(tiny_tokenizer):
    assert not renders_tool_calls(tiny_tokenizer)  # role and content only, like SmolLM2's
    messages = tool_calls_as_text(CONVERSATION, tiny_tokenizer)
    assert messages[1] == {"role": "assistant", "content": BLOCK}
    assert messages[0] == CONVERSATION[0] and messages[2:] == CONVERSATION[2:]
    assert CONVERSATION[1]["tool_calls"] == [CALL]  # the caller's messages are not changed
    rendered = tiny_tokenizer.apply_chat_template(messages, tokenize=False)
    assert f"<|im_start|>assistant\n{BLOCK}<|im_end|>" in rendered
    # text before the call stays first; several calls follow one another
    two = [{"role": "assistant", "content": "Let me compute.", "tool_calls": [CALL, CALL]}]
    assert tool_calls_as_text(two, tiny_tokenizer)[0]["content"] == f"Let me compute.\n{BLOCK}{BLOCK}"


def test_a_template_that_shows_calls_is_left_alone(tiny_tokenizer):
    shows = copy.deepcopy(tiny_tokenizer)
    shows.chat_template = SHOWS_CALLS
    assert renders_tool_calls(shows)
    assert tool_calls_as_text(CONVERSATION, shows) == CONVERSATION


def test_arguments_that_are_not_json_are_shown_as_sent():
    call = {"function": {"name": "python", "arguments": "print(1"}}
    assert tool_call_text(call) == '<tool_call>{"name": "python", "arguments": "print(1"}</tool_call>'


def test_text_fallback_trains_on_the_call_tokens(tiny_tokenizer):
    """Without server token ids, the call the model made is among its trained tokens."""
    out = process_env_results([CONVERSATION[:1]], [CONVERSATION[1:]], [{}], [1.0],
                              processing_class=tiny_tokenizer)
    ids, mask = out["completion_ids"][0], out["completion_mask"][0]
    model_text = tiny_tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert BLOCK in model_text and "\\boxed{7918}" in model_text
    env_text = tiny_tokenizer.decode([t for t, m in zip(ids, mask) if not m])
    assert "tool\n7918" in env_text and "print" not in env_text
