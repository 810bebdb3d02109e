"""OpenAI wire objects rendered by ``verifiers.utils.openai_wire``, parsed by the ``openai``
client's own types."""

from __future__ import annotations

import json
import subprocess
import sys

from openai.types import Completion, Model
from openai.types.chat import ChatCompletion

from verifiers.utils import openai_wire as wire


def test_a_chat_completion_parses_with_tool_calls_logprobs_and_vllm_extras() -> None:
    calls = [wire.tool_call("call_1", "add", '{"a": 1}')]
    top = [wire.token_logprob("hé", -0.5), wire.token_logprob("x", -1.5)]
    entries = [wire.token_logprob("hé", -0.5, top_logprobs=top)]
    choice = wire.chat_choice(0, wire.assistant_message(None, calls), "tool_calls",
                              wire.chat_logprobs(entries), token_ids=[7], stop_reason=None)
    body = wire.chat_completion("chatcmpl-1", "m", [choice], wire.usage(3, 1),
                                prompt_token_ids=[1, 2, 3], created=5)
    response = ChatCompletion.model_validate(json.loads(json.dumps(body)))

    assert (response.id, response.object, response.created, response.model) == (
        "chatcmpl-1", "chat.completion", 5, "m")
    assert response.usage is not None and response.usage.total_tokens == 4
    assert response.model_extra == {"prompt_token_ids": [1, 2, 3]}
    (parsed,) = response.choices
    assert parsed.model_extra == {"stop_reason": None, "token_ids": [7]}
    assert parsed.finish_reason == "tool_calls" and parsed.message.content is None
    assert parsed.message.tool_calls is not None
    call = parsed.message.tool_calls[0]
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "call_1", "function", "add", '{"a": 1}')
    assert parsed.logprobs is not None and parsed.logprobs.content is not None
    (entry,) = parsed.logprobs.content
    assert entry.token == "hé" and entry.bytes == list("hé".encode()) and entry.logprob == -0.5
    assert [alt.token for alt in entry.top_logprobs] == ["hé", "x"]


def test_optional_fields_are_left_out_unless_given() -> None:
    message = wire.assistant_message("hi")
    assert message == {"role": "assistant", "content": "hi", "refusal": None}
    assert "top_logprobs" not in wire.token_logprob("a", -1.0)
    assert wire.token_logprob("\u00e9", -1.0, [233])["bytes"] == [233]  # a byte shown as latin-1
    choice = wire.chat_choice(0, message, "stop")
    assert list(choice) == ["index", "message", "finish_reason", "logprobs"]
    body = wire.chat_completion("c", "m", [choice], wire.usage(1, 1))
    assert "prompt_token_ids" not in body and isinstance(body["created"], int)
    text = wire.text_choice(0, "x", "stop", prompt_token_ids=[1])
    assert "prompt_token_ids" not in text and "token_ids" not in text


def test_a_text_completion_parses_with_offsets_and_token_ids() -> None:
    logprobs = wire.text_logprobs(["ab", "", "c"], [-1.0, -2.0, -3.0],
                                  [{"ab": -1.0}, {"": -2.0}, {"c": -3.0}])
    assert logprobs["text_offset"] == [0, 2, 2]  # each token's offset in the text
    choices = [wire.text_choice(i, "abc", "length", logprobs, prompt_token_ids=[i],
                                token_ids=[4, 5, 6], stop_reason=None) for i in range(2)]
    body = wire.text_completion("cmpl-1", "m", choices, wire.usage(2, 6), prompt_token_ids=[0])
    response = Completion.model_validate(json.loads(json.dumps(body)))

    assert response.object == "text_completion" and response.system_fingerprint is None
    assert response.model_extra == {"prompt_token_ids": [0]}
    assert [c.model_extra["prompt_token_ids"] for c in response.choices] == [[0], [1]]
    assert response.choices[1].logprobs is not None
    assert response.choices[1].logprobs.tokens == ["ab", "", "c"]
    assert response.usage is not None and response.usage.total_tokens == 8


def test_the_model_list_parses() -> None:
    body = wire.model_list(["a", "b"], owned_by="me")
    assert body["object"] == "list"
    assert [Model.model_validate(m).id for m in body["data"]] == ["a", "b"]


def test_the_module_needs_the_standard_library_only() -> None:
    code = ("import sys; import verifiers.utils.openai_wire; "
            "print(','.join(m for m in ('openai', 'pydantic', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
