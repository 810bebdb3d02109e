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
