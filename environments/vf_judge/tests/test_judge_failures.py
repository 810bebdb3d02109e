"""A judge that times out or gives no readable verdict fails the rollout: it is recorded
in ``state["error"]`` and ``results["errors"]``, never scored as a silent 0."""

from __future__ import annotations

import math

import pytest

from vf_judge import load_environment


def assert_failed(results, i, *fragments):
    """Rollout ``i`` failed in the judge, with every fragment in its error message."""
    error = results["errors"][i]
    assert error is not None and error.startswith("reward_error: JudgeError"), error
    for fragment in fragments:
        assert fragment in error, (fragment, error)
    state = results["states"][i]
    assert state["error"]["type"] == "reward_error"
    assert state["error"]["func"] == "judge_score"
    assert "judge_score" in state["reward_errors"]
    assert results["rewards"][i] == 0.0
    assert math.isnan(results["metrics"]["judge_score"][i])


def test_gibberish_verdict_is_an_error(make_scripted_server, policy):
    judge = make_scripted_server(handler=lambda request: "Banana bread is delicious.")
    env = load_environment(judge_base_url=judge.base_url, num_eval_examples=2)
    results = env.evaluate(policy.sync_client(), "policy-model")

    for i in range(2):
        assert_failed(results, i, "could not read a verdict", "Banana bread")
        (entry,) = results["states"][i]["judge"]
        assert "Banana bread" in entry["error"] and "score" not in entry
    summary = results.summary()
    assert summary["num_failed"] == 2 and summary["reward"]["n"] == 0
    assert summary["errors"] == {"reward_error": 2}


def test_empty_verdict_is_an_error(make_scripted_server, policy):
    judge = make_scripted_server(handler=lambda request: "")
    env = load_environment(judge_base_url=judge.base_url, num_eval_examples=1)
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert_failed(results, 0, "empty reply")


def test_hanging_judge_times_out_as_an_error(make_scripted_server, policy, scripted_judges):
    judge = make_scripted_server(handler=scripted_judges["yes_no"], hang_s=10)
    judge.fail_next("timeout", 1)  # the first judge request hangs
    env = load_environment(
        judge_base_url=judge.base_url, judge_timeout=0.5, judge_max_retries=0,
        num_eval_examples=2,
    )
    results = env.evaluate(policy.sync_client(), "policy-model", max_concurrent=1)

    assert_failed(results, 0, "'gpt-4.1-mini'", "timed out")
    assert results["errors"][1] is None and results["rewards"][1] == 0.0  # judged: wrong
    assert judge.stats["failures"]["timeout"] == 1
    assert "timed out" in results["states"][0]["judge"][0]["error"]


def test_slow_judge_beyond_timeout_is_retried_then_an_error(make_scripted_server, policy, scripted_judges):
    judge = make_scripted_server(handler=scripted_judges["yes_no"], latency_ms=3000)
    env = load_environment(
        judge_base_url=judge.base_url, judge_timeout=0.3, judge_max_retries=1,
        num_eval_examples=1,
    )
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert_failed(results, 0, "after 2 attempts", "timed out")
    assert len(judge.requests) == 2  # first try + one retry


def test_transient_judge_failure_is_retried(make_scripted_server, policy, scripted_judges):
    judge = make_scripted_server(handler=scripted_judges["yes_no"])
    judge.fail_next("garbage", 1)  # a cut-off response body
    env = load_environment(
        judge_base_url=judge.base_url, judge_max_retries=1, num_eval_examples=1,
    )
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert results["errors"] == [None] and results["rewards"] == [1.0]
    assert judge.stats["failures"]["garbage"] == 1 and judge.stats["completed"] == 1


def test_judge_server_error_without_retries_is_an_error(make_scripted_server, policy, scripted_judges):
    judge = make_scripted_server(handler=scripted_judges["yes_no"])
    judge.fail_next("500", 1)
    env = load_environment(judge_base_url=judge.base_url, judge_max_retries=0, num_eval_examples=1)
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert_failed(results, 0, "500")


def test_one_failing_judge_in_a_panel_fails_the_rollout(make_scripted_server, policy, scripted_judges):
    def handler(request):
        if request["model"] == "broken":
            return "I would rather not say."
        return scripted_judges["yes_no"](request)

    judge = make_scripted_server(handler=handler)
    env = load_environment(
        judge_base_url=judge.base_url, judge_models=["fair-a", "broken", "fair-b"],
        aggregation="majority", num_eval_examples=1,
    )
    results = env.evaluate(policy.sync_client(), "policy-model")

    assert_failed(results, 0, "'broken'", "could not read a verdict")
    entries = {e["model"]: e for e in results["states"][0]["judge"]}
    assert entries["fair-a"]["score"] == entries["fair-b"]["score"] == 1.0
    assert "error" in entries["broken"]


def test_missing_judge_endpoint_is_an_error(policy, unused_port_url):
    env = load_environment(
        judge_base_url=unused_port_url, judge_max_retries=0, judge_timeout=2,
        num_eval_examples=1,
    )
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert_failed(results, 0, "Connection")
    assert results["completions"][0][-1]["content"].startswith("Let me work")


@pytest.fixture
def unused_port_url():
    """The URL of a local port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
