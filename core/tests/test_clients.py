"""The request layer: client normalisation, sampling arguments, retry policy."""

import openai
import pytest

import verifiers as vf
from verifiers.clients import as_async_client, normalize_sampling_args


def test_sync_client_gets_an_async_twin_with_the_same_settings():
    sync = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k-123",
                         default_headers={"X-Team": "rl"}, timeout=12.0)
    twin = as_async_client(sync)
    assert isinstance(twin, openai.AsyncOpenAI)
    assert str(twin.base_url) == str(sync.base_url)
    assert twin.api_key == "k-123"
    assert twin._custom_headers["X-Team"] == "rl"
    assert twin.timeout == 12.0
    already = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x")
    assert as_async_client(already) is already


def test_non_clients_are_rejected_clearly():
    with pytest.raises(TypeError, match="No client given"):
        as_async_client(None)
    with pytest.raises(TypeError, match="not an OpenAI-compatible client"):
        as_async_client("http://127.0.0.1:8000/v1")


def test_unknown_sampling_args_go_to_extra_body():
    args = normalize_sampling_args({"temperature": 0.5, "top_k": 20, "min_p": 0.1,
                                    "return_token_ids": True, "extra_body": {"a": 1}})
    assert args == {"temperature": 0.5,
                    "extra_body": {"a": 1, "top_k": 20, "min_p": 0.1, "return_token_ids": True}}
    assert normalize_sampling_args(None) == {}


def test_retry_policy_validates_and_backs_off():
    policy = vf.RetryPolicy(backoff_base=0.5, backoff_max=4.0)
    assert 0.25 <= policy.delay(0) <= 0.5
    assert 2.0 <= policy.delay(3) <= 4.0
    assert policy.delay(10) <= 4.0
    with pytest.raises(ValueError, match="max_retries"):
        vf.RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        vf.RetryPolicy(timeout=0)


def test_extra_sampling_args_reach_the_server(make_scripted_server):
    server = make_scripted_server(default_reply="ok")
    env = vf.SingleTurnEnv(dataset=[{"question": "q", "answer": "a"}])
    env.evaluate(server.client(), "m", sampling_args={"top_k": 5, "min_p": 0.05, "temperature": 1.0})
    request = server.requests[0]
    assert request["top_k"] == 5 and request["min_p"] == 0.05 and request["temperature"] == 1.0


def test_the_delay_a_server_asks_for_is_honoured_up_to_the_cap():
    from email.utils import formatdate

    from verifiers.transport import HttpStatusError

    def answer(**headers):
        return HttpStatusError(429, "slow down", headers)

    policy = vf.RetryPolicy(backoff_base=100.0, backoff_max=60.0)
    assert policy.delay(0, answer(**{"retry-after-ms": "250"})) == 0.25
    assert policy.delay(0, answer(**{"Retry-After": "3"})) == 3.0
    assert policy.delay(5, answer(**{"Retry-After": "0"})) == 0.0
    assert policy.delay(0, answer(**{"Retry-After": "86400"})) == 60.0  # capped
    in_ten = formatdate(__import__("time").time() + 10, usegmt=True)
    assert 5.0 <= policy.delay(0, answer(**{"Retry-After": in_ten})) <= 10.0
    assert 30.0 <= policy.delay(0, answer(**{"Retry-After": "soon"})) <= 60.0  # unreadable
    assert vf.RetryPolicy().backoff_max == 60.0  # about a minute by default


@pytest.mark.timeout(120)
def test_retry_after_from_the_server_replaces_a_long_backoff(make_scripted_server):
    # the scripted 429 says Retry-After: 0; the policy's own backoff would wait minutes
    server = make_scripted_server(default_reply="ok")
    server.fail_next("429", 2)
    env = vf.SingleTurnEnv(dataset=[{"question": "q", "answer": "a"}],
                           retry_policy=vf.RetryPolicy(max_retries=2, backoff_base=600.0,
                                                       backoff_max=600.0))
    results = env.evaluate(server.client(), "m")
    assert results["errors"] == [None]
    assert server.stats["total"] == 3


def test_openai_client_errors_carry_their_retry_after_too(make_scripted_server):
    # a client the lean path does not cover: openai's own RateLimitError has the headers
    import httpx2

    server = make_scripted_server(default_reply="ok")
    server.fail_next("429", 1)
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0,
                                http_client=httpx2.AsyncClient())
    import asyncio

    async def first_error():
        try:
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
        except openai.RateLimitError as exc:
            return exc

    exc = asyncio.run(first_error())
    assert vf.RetryPolicy(backoff_base=600.0).delay(0, exc) == 0.0


def test_stop_after_connection_failures_is_validated():
    with pytest.raises(ValueError, match="stop_after_connection_failures"):
        vf.RetryPolicy(stop_after_connection_failures=-1)
