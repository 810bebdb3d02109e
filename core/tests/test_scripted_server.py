"""Tests of the scripted OpenAI-compatible server, through the real ``openai`` client."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from typing import Any

import openai
import pytest

from verifiers.testing import ErrorReply, Reply, ScriptedServer, ToolCall
from verifiers.testing.server import decode, encode, render_chat_prompt

pytestmark = pytest.mark.timeout(60)

USER: list[Any] = [{"role": "user", "content": "hello there"}]


def chat(server: ScriptedServer, messages: list[Any] | None = None, **kwargs: Any) -> Any:
    client = server.sync_client()
    return client.chat.completions.create(model="test-model", messages=messages or USER, **kwargs)


def test_chat_echo_round_trip(scripted_server: ScriptedServer) -> None:
    resp = chat(scripted_server)
    choice = resp.choices[0]
    assert resp.object == "chat.completion"
    assert resp.model == "test-model"
    assert choice.message.role == "assistant"
    assert choice.message.content == "hello there"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.completion_tokens == len("hello there")
    assert resp.usage.prompt_tokens == len(render_chat_prompt(USER).encode())
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert scripted_server.requests[0]["_path"] == "/v1/chat/completions"
    assert scripted_server.requests[0]["messages"] == USER
    assert scripted_server.base_url == f"http://127.0.0.1:{scripted_server.port}/v1"
    models = scripted_server.sync_client().models.list()
    assert [m.id for m in models.data] == ["scripted-model"]
    stats = scripted_server.stats
    assert stats["completed"] == 2 and stats["total"] == 2
    assert stats["endpoints"] == {"/v1/chat/completions": 1, "/v1/models": 1}


def test_scripting_priority(make_scripted_server) -> None:
    def handler(request: dict[str, Any]) -> Reply | str | None:
        text = request["messages"][-1]["content"]
        return Reply(content="from handler") if text == "handler" else None

    server = make_scripted_server(
        handler=handler,
        rules=[(r"^rule", "from rule"), (r"handler", "never: handler wins")],
        script=["script 1", Reply(content="script 2")],
        default_reply="from default",
    )

    def ask(text: str) -> str | None:
        return chat(server, [{"role": "user", "content": text}]).choices[0].message.content

    assert ask("handler") == "from handler"
    assert ask("rule please") == "from rule"
    assert ask("a") == "script 1"
    assert ask("rule again") == "from rule"  # rules do not consume the script
    assert ask("b") == "script 2"
    assert ask("c") == "from default"  # script exhausted: fall through
    server.configure(default_reply=None, rules=[], handler=None)
    assert ask("echo me") == "echo me"


def test_handler_can_return_raw_dict_and_errors(make_scripted_server) -> None:
    raw = {
        "id": "raw-1",
        "object": "chat.completion",
        "created": 0,
        "model": "raw-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "raw!"},
                "finish_reason": "stop",
            }
        ],
    }
    replies: list[Any] = [raw, ErrorReply(400, "This model's maximum context length is 8"), "x"]

    def handler(request: dict[str, Any]) -> Any:
        item = replies.pop(0)
        if item == "x":
            raise RuntimeError("boom")
        return item

    server = make_scripted_server(handler=handler)
    assert chat(server).choices[0].message.content == "raw!"
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        chat(server)
    with pytest.raises(openai.InternalServerError, match="boom"):
        chat(server)
    assert isinstance(server.handler_errors[0], RuntimeError)
    assert server.stats["errors"] == 2


def test_token_ids_and_logprobs(scripted_server: ScriptedServer) -> None:
    resp = chat(
        scripted_server, logprobs=True, top_logprobs=2, extra_body={"return_token_ids": True}
    )
    choice = resp.choices[0]
    prompt_ids = resp.model_extra["prompt_token_ids"]
    token_ids = choice.model_extra["token_ids"]
    assert prompt_ids == encode(render_chat_prompt(USER))
    assert prompt_ids[-len(encode("<|im_start|>assistant\n")) :] == encode(
        "<|im_start|>assistant\n"
    )
    assert token_ids == encode("hello there") and decode(token_ids) == "hello there"
    assert choice.logprobs is not None and choice.logprobs.content is not None
    entries = choice.logprobs.content
    assert [e.token for e in entries] == list("hello there")
    assert all(e.logprob < 0 and len(e.top_logprobs) == 2 for e in entries)
    assert entries[0].bytes == [ord("h")]
    # Without the flags there is neither token ids nor logprobs.
    plain = chat(scripted_server)
    assert "prompt_token_ids" not in (plain.model_extra or {})
    assert plain.choices[0].logprobs is None


def test_multi_turn_prompt_extends_previous_prompt_and_completion(make_scripted_server) -> None:
    server = make_scripted_server(
        script=[
            Reply(content="Let me look.", tool_calls=[ToolCall("lookup", {"q": "x"})]),
            "Done: 42",
        ]
    )
    client = server.sync_client()
    extra = {"return_token_ids": True}
    first = client.chat.completions.create(model="m", messages=USER, extra_body=extra)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    history = [
        *USER,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "42"},
    ]
    second = client.chat.completions.create(model="m", messages=history, extra_body=extra)
    prefix = first.model_extra["prompt_token_ids"] + first.choices[0].model_extra["token_ids"]
    assert second.model_extra["prompt_token_ids"][: len(prefix)] == prefix
    assert second.choices[0].message.content == "Done: 42"


def test_max_tokens_and_stop(scripted_server: ScriptedServer) -> None:
    scripted_server.configure(default_reply="abcdefghij")
    resp = chat(scripted_server, max_tokens=4, extra_body={"return_token_ids": True})
    assert resp.choices[0].message.content == "abcd"
    assert resp.choices[0].finish_reason == "length"
    assert resp.choices[0].model_extra["token_ids"] == encode("abcd")
    assert resp.usage is not None and resp.usage.completion_tokens == 4
    resp = chat(scripted_server, max_completion_tokens=6)
    assert (resp.choices[0].message.content, resp.choices[0].finish_reason) == ("abcdef", "length")
    resp = chat(scripted_server, stop=["x", "def"])
    assert (resp.choices[0].message.content, resp.choices[0].finish_reason) == ("abc", "stop")


def test_tool_calls_parsed_by_client(make_scripted_server) -> None:
    server = make_scripted_server(
        default_reply=Reply(
            tool_calls=[
                ToolCall("add", {"a": 1, "b": 2}, id="call_fixed"),
                ToolCall("broken", '{"a": 1,'),
                ToolCall("double", json.dumps(json.dumps({"a": 1}))),
            ]
        )
    )
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    resp = chat(server, tools=tools)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and [c.function.name for c in calls] == ["add", "broken", "double"]
    assert calls[0].id == "call_fixed" and calls[0].type == "function"
    assert json.loads(calls[0].function.arguments) == {"a": 1, "b": 2}
    assert calls[1].function.arguments == '{"a": 1,'  # malformed, verbatim
    assert json.loads(json.loads(calls[2].function.arguments)) == {"a": 1}  # double-encoded
    assert len({c.id for c in calls}) == 3


def test_n_choices(make_scripted_server) -> None:
    server = make_scripted_server(script=[["one", "two"]])
    resp = chat(server, n=3)
    assert [c.index for c in resp.choices] == [0, 1, 2]
    assert [c.message.content for c in resp.choices] == ["one", "two", "one"]
    assert resp.usage is not None and resp.usage.completion_tokens == 3 + 3 + 3


def test_completions_endpoint(make_scripted_server) -> None:
    server = make_scripted_server(rules=[(r"^Once", "upon a time")])
    client = server.sync_client()
    resp = client.completions.create(
        model="m", prompt="Once", max_tokens=4, logprobs=2, extra_body={"return_token_ids": True}
    )
    choice = resp.choices[0]
    assert resp.object == "text_completion"
    assert (choice.text, choice.finish_reason) == ("upon", "length")
    assert choice.model_extra["token_ids"] == encode("upon")
    assert choice.model_extra["prompt_token_ids"] == encode("Once")
    assert resp.model_extra["prompt_token_ids"] == encode("Once")
    assert choice.logprobs is not None and choice.logprobs.tokens == list("upon")
    assert choice.logprobs.text_offset == [0, 1, 2, 3]
    assert choice.logprobs.top_logprobs is not None and len(choice.logprobs.top_logprobs[0]) == 2
    echo = client.completions.create(model="m", prompt="plain text")
    assert echo.choices[0].text == "plain text" and echo.choices[0].logprobs is None


def test_streaming_is_rejected(scripted_server: ScriptedServer) -> None:
    with pytest.raises(openai.BadRequestError, match="streaming"):
        chat(scripted_server, stream=True)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("500", openai.InternalServerError),
        ("429", openai.RateLimitError),
        ("timeout", openai.APITimeoutError),
        ("drop", openai.APIConnectionError),
        ("garbage", json.JSONDecodeError),  # the client raises the raw decode error
    ],
)
def test_fault_kinds(make_scripted_server, kind: str, error: type[Exception]) -> None:
    server = make_scripted_server(hang_s=5)
    server.fail_next(kind)
    client = server.sync_client(timeout=0.3)
    with pytest.raises(error) as info:
        client.chat.completions.create(model="m", messages=USER)
    if kind == "drop":
        assert not isinstance(info.value, openai.APITimeoutError)
    if isinstance(info.value, openai.RateLimitError):
        assert info.value.response.headers["retry-after"] == "0"
    # The next request is served normally and the failure was counted.
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content
    assert server.stats["failures"][kind] == 1
    assert server.stats["completed"] == 1


def test_failure_rate_is_seeded_and_deterministic(make_scripted_server) -> None:
    def outcomes(seed: int) -> list[str]:
        server = make_scripted_server(failure_rate=0.5, failure_kinds=["500", "429"], seed=seed)
        client = server.sync_client()
        seen = []
        for _ in range(20):
            try:
                client.chat.completions.create(model="m", messages=USER)
                seen.append("ok")
            except openai.APIStatusError as exc:
                seen.append(str(exc.status_code))
        stats = server.stats
        assert stats["completed"] == seen.count("ok")
        assert stats["failures"]["500"] == seen.count("500")
        return seen

    first = outcomes(7)
    assert first == outcomes(7)
    assert {"ok", "500", "429"} <= set(first)


def test_max_in_flight_and_latency(make_scripted_server) -> None:
    server = make_scripted_server(latency_ms=50)

    async def run() -> float:
        client = server.client()
        start = time.perf_counter()
        await asyncio.gather(
            *(client.chat.completions.create(model="m", messages=USER) for _ in range(20))
        )
        elapsed = time.perf_counter() - start
        await client.close()
        return elapsed

    elapsed = asyncio.run(run())
    stats = server.stats
    assert stats["max_in_flight"] == 20
    assert stats["in_flight"] == 0 and stats["completed"] == 20
    assert 0.05 <= elapsed < 1.0  # concurrent, not serialized
    server.reset_stats()
    assert server.stats["total"] == 0 and server.stats["max_in_flight"] == 0
    start = time.perf_counter()
    chat(server)
    assert time.perf_counter() - start >= 0.05
    assert server.stats["max_in_flight"] == 1


def test_reply_delay_is_added(make_scripted_server) -> None:
    server = make_scripted_server(default_reply=Reply(content="slow", delay_ms=80))
    start = time.perf_counter()
    assert chat(server).choices[0].message.content == "slow"
    assert time.perf_counter() - start >= 0.08


def test_http_keep_alive_and_connection_close(scripted_server: ScriptedServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", scripted_server.port, timeout=5)
    body = json.dumps({"model": "m", "messages": USER})
    headers = {"Content-Type": "application/json"}
    for _ in range(2):  # two requests on the same connection
        conn.request("POST", "/v1/chat/completions", body, headers)
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["choices"][0]["message"]["content"] == "hello there"
    conn.request("GET", "/health", headers={"Connection": "close"})
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Connection") == "close"
    response.read()
    conn.request("GET", "/nope")
    response = conn.getresponse()  # http.client reconnects transparently
    assert response.status == 404
    conn.close()


def test_spawned_server_subprocess_mode() -> None:
    server = ScriptedServer.spawn(
        latency_ms=5, rules=[(r"ping", "pong")], default_reply=Reply(content="default")
    )
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        client = server.sync_client()
        ask: list[Any] = [{"role": "user", "content": "ping"}]
        pong = client.chat.completions.create(model="m", messages=ask)
        assert pong.choices[0].message.content == "pong"
        resp = client.chat.completions.create(model="m", messages=USER)
        assert resp.choices[0].message.content == "default"
        server.fail_next("500")
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=USER)
        stats = server.stats()
        assert stats["completed"] == 2 and stats["failures"]["500"] == 1
        assert stats["endpoints"] == {"/v1/chat/completions": 3}
        server.reset_stats()
        assert server.stats()["total"] == 0
    finally:
        server.stop()
    assert server.process.poll() is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
        pass


def test_thread_mode_stop_releases_port_and_thread() -> None:
    threads = threading.active_count()
    with ScriptedServer() as server:
        assert threading.active_count() == threads + 1
        assert chat(server).choices[0].message.content == "hello there"
    assert threading.active_count() == threads
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
        pass


def test_spawn_rejects_callables() -> None:
    with pytest.raises(TypeError):
        ScriptedServer.spawn(handler=lambda request: "x")
