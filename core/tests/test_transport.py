"""The lean HTTP path: which clients it covers, what it sends, what it returns."""

import asyncio
import json
import socket
import threading

import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion

import verifiers as vf
from verifiers.clients import create_chat, create_completion
from verifiers.transport import lean_endpoint

BODY = {
    "id": "c-1", "object": "chat.completion", "created": 0, "model": "m",
    "prompt_token_ids": [7, 8, 9],
    "choices": [{
        "index": 0, "finish_reason": "stop", "token_ids": [11, 12],
        "message": {"role": "assistant", "content": "hello", "tool_calls": [
            {"id": "call-1", "type": "function",
             "function": {"name": "add", "arguments": "{\"a\": 1}"}}]},
        "logprobs": {"content": [{"token": "he", "logprob": -0.5, "bytes": [104, 101],
                                  "top_logprobs": []}]},
    }],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


class CaptureServer:
    """A real HTTP server on 127.0.0.1 that records each request (headers, query, JSON
    body) and answers with ``reply(request_number)``: (status, headers, body bytes)."""

    def __init__(self, reply=None):
        self.seen = []
        self.reply = reply or (lambda n: (200, {}, json.dumps(BODY).encode()))
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request):
        self.seen.append({"path": request.path, "headers": dict(request.headers),
                          "query": dict(request.query), "body": await request.json()})
        status, headers, body = self.reply(len(self.seen))
        return web.Response(status=status, headers=headers, body=body,
                            content_type="application/json")

    def _run(self):
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def test_a_users_client_is_sent_with_its_key_headers_and_query():
    with CaptureServer() as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k-123",
                                    default_headers={"X-Team": "rl"}, default_query={"v": "2"})
        assert lean_endpoint(client) is not None
        response = asyncio.run(create_chat(
            client, "m", [{"role": "user", "content": "hi"}],
            {"temperature": 0.5, "extra_body": {"top_k": 3}, "extra_headers": {"X-Run": "7"}}))
    seen = server.seen[0]
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["Authorization"] == "Bearer k-123"
    assert seen["headers"]["X-Team"] == "rl" and seen["headers"]["X-Run"] == "7"
    assert seen["query"] == {"v": "2"}
    assert seen["body"] == {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                            "temperature": 0.5, "top_k": 3}
    # the very objects the openai client returns, server extras included
    assert isinstance(response, ChatCompletion)
    assert response.choices[0].message.content == "hello"
    assert response.choices[0].message.tool_calls[0].function.name == "add"
    assert response.model_extra["prompt_token_ids"] == [7, 8, 9]
    assert response.choices[0].model_extra["token_ids"] == [11, 12]
    assert response.choices[0].logprobs.content[0].logprob == -0.5
    assert response.usage.completion_tokens == 2


def test_environments_read_the_same_turns_through_the_lean_path():
    with CaptureServer() as server:
        env = vf.SingleTurnEnv(dataset=[{"question": "q", "answer": "a"}])
        results = env.evaluate(openai.OpenAI(base_url=server.base_url, api_key="x"), "m")
    turn = results["states"][0]["turns"][0]
    assert turn["prompt_token_ids"] == [7, 8, 9] and turn["completion_token_ids"] == [11, 12]
    assert turn["completion_logprobs"] == [-0.5] and turn["finish_reason"] == "stop"
    message = results["completions"][0][0]
    assert message["content"] == "hello"
    assert message["tool_calls"][0]["function"] == {"name": "add", "arguments": "{\"a\": 1}"}


def test_a_body_that_bends_the_schema_is_accepted_as_the_openai_client_accepts_it():
    odd = dict(BODY, choices=[dict(BODY["choices"][0], finish_reason="abort")])
    odd.pop("created")
    with CaptureServer(lambda n: (200, {}, json.dumps(odd).encode())) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
        response = asyncio.run(create_chat(client, "m", [{"role": "user", "content": "hi"}]))
    assert response.choices[0].finish_reason == "abort"
    assert response.choices[0].message.content == "hello"


def test_pydantic_messages_in_a_request_are_sent_as_json():
    message = ChatCompletion.model_validate(BODY).choices[0].message
    with CaptureServer() as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
        asyncio.run(create_chat(client, "m", [{"role": "user", "content": "hi"}, message]))
    sent = server.seen[0]["body"]["messages"][1]
    assert sent["content"] == "hello" and sent["tool_calls"][0]["id"] == "call-1"


def test_completions_go_over_the_lean_path_too(make_scripted_server):
    server = make_scripted_server(default_reply="four")
    response = asyncio.run(create_completion(server.client(), "m", "2+2=", {"max_tokens": 8}))
    assert response.choices[0].text == "four"
    assert server.requests[0]["_path"] == "/v1/completions"


def test_clients_the_lean_path_does_not_cover_are_used_as_they_are(make_scripted_server):
    import httpx2

    server = make_scripted_server(default_reply="ok")
    own_http = openai.AsyncOpenAI(base_url=server.base_url, api_key="x",
                                  http_client=httpx2.AsyncClient())

    class Wrapped(openai.AsyncOpenAI):
        pass

    subclass = Wrapped(base_url=server.base_url, api_key="x")
    patched = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
    original = patched.chat.completions.create
    calls = []

    async def traced(**kwargs):
        calls.append(kwargs["model"])
        return await original(**kwargs)

    patched.chat.completions.create = traced
    for client in (own_http, subclass, patched):
        assert lean_endpoint(client) is None
        response = asyncio.run(create_chat(client, "m", [{"role": "user", "content": "hi"}]))
        assert response.choices[0].message.content == "ok"
    assert calls == ["m"]  # the instrumented client saw its request
    streaming = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
    assert not lean_endpoint(streaming).covers({"stream": True})
    assert not lean_endpoint(streaming).covers({"extra_body": {"stream": True}})
    assert lean_endpoint(streaming).covers({"extra_body": {"top_k": 2}})


def test_status_errors_and_malformed_bodies_are_classified():
    replies = {1: (503, {"Retry-After": "0"}, b'{"error": {"message": "warming up"}}'),
               2: (200, {}, b'{"id": "x", "choices": [{"ind'),
               3: (400, {}, b'{"error": {"message": "maximum context length is 8"}}'),
               4: (401, {}, b'{"error": {"message": "bad key"}}')}
    policy = vf.RetryPolicy(max_retries=2, backoff_base=0.0)
    with CaptureServer(lambda n: replies.get(n, replies[4])) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
        msgs = [{"role": "user", "content": "hi"}]
        with pytest.raises(vf.ModelRequestError) as info:  # 503, garbage, then 400 context
            asyncio.run(create_chat(client, "m", msgs, policy=policy))
        assert info.value.kind == "context_length" and info.value.attempts == 3
        with pytest.raises(vf.ModelRequestError) as info:
            asyncio.run(create_chat(client, "m", msgs, policy=policy))
        assert info.value.kind == "http_401" and info.value.attempts == 1
        assert "bad key" in str(info.value)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_server_stops_the_run_with_what_was_done_kept(make_scripted_server):
    server = make_scripted_server(default_reply="<answer>1</answer>")
    env = vf.SingleTurnEnv(
        dataset=[{"question": str(i), "answer": "1"} for i in range(40)],
        retry_policy=vf.RetryPolicy(max_retries=1, backoff_base=0.0,
                                    stop_after_connection_failures=5),
    )
    saved = []

    def on_result(record):
        saved.append(record)
        if len(saved) == 10:
            server.stop()  # the server goes away after ten rollouts

    with pytest.raises(vf.ServerUnreachableError) as info:
        env.generate(env.get_dataset(), server.client(), "m", max_concurrent=1,
                     on_result=on_result)
    error = info.value
    assert server.base_url in str(error) and "could not be reached" in str(error)
    results = error.results
    assert results.num_rollouts == len(saved) == 15  # ten done, five failed to connect
    assert results["errors"][:10] == [None] * 10
    assert all(s["error"]["reason"] == "connection_error" for s in results["states"][10:])
    assert results["example_ids"] == list(range(15))


def test_connection_failures_between_successes_do_not_stop_a_run(make_scripted_server):
    server = make_scripted_server(default_reply="ok")
    server.fail_next("drop", 2)  # both attempts of the first rollout lose their connection

    def on_result(record):
        if record["error"] is None:
            server.fail_next("drop", 2)  # ... and of every rollout after a success

    env = vf.SingleTurnEnv(
        dataset=[{"question": str(i), "answer": "1"} for i in range(12)],
        retry_policy=vf.RetryPolicy(max_retries=1, backoff_base=0.0,
                                    stop_after_connection_failures=2),
    )
    results = env.generate(env.get_dataset(), server.client(), "m", max_concurrent=1,
                           on_result=on_result)
    failed = [e is not None for e in results["errors"]]
    assert failed == [True, False] * 6  # one failure at a time never reaches the limit
    assert all(s["error"]["reason"] == "connection_error" for s in results["states"] if s["error"])


def test_nothing_listening_stops_after_the_limit():
    url = f"http://127.0.0.1:{free_port()}/v1"
    env = vf.SingleTurnEnv(
        dataset=[{"question": str(i), "answer": "1"} for i in range(30)],
        retry_policy=vf.RetryPolicy(max_retries=0, stop_after_connection_failures=3),
    )
    with pytest.raises(vf.ServerUnreachableError) as info:
        env.evaluate(openai.AsyncOpenAI(base_url=url, api_key="x"), "m", max_concurrent=1)
    assert info.value.results.num_rollouts == 3 and info.value.results.num_failed == 3
    assert "27 were not run" in str(info.value)
