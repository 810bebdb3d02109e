"""End to end: a scripted policy answers GSM8K questions, scripted judges grade them."""

from __future__ import annotations

import math

import pytest

import verifiers as vf
from vf_judge import load_environment

N = 4  # rows 0 and 2 are answered right, rows 1 and 3 off by one


def expected_correct(n: int = N) -> list[float]:
    return [1.0 if i % 2 == 0 else 0.0 for i in range(n)]


def test_yes_no_judge_scores_and_keeps_replies_in_state(policy, judge_server, gsm8k_test):
    env = load_environment(judge_base_url=judge_server.base_url, num_eval_examples=10)
    results = env.evaluate(policy.sync_client(), "policy-model", num_examples=N)

    assert results["errors"] == [None] * N
    assert results["rewards"] == expected_correct()
    assert results["metrics"]["judge_score"] == expected_correct()
    for i, state in enumerate(results["states"]):
        (entry,) = state["judge"]
        assert entry["model"] == "gpt-4.1-mini"
        assert entry["score"] == expected_correct()[i]
        assert entry["response"].startswith("yes" if i % 2 == 0 else "no")
        assert "reference" in entry["response"]  # the judge's reasoning is kept
        # The judge saw the question, the reference answer and the policy's response.
        assert gsm8k_test[i]["question"] in entry["prompt"]
        assert f"```\n{gsm8k_test[i]['answer']}\n```" in entry["prompt"]
        assert results["completions"][i][-1]["content"] in entry["prompt"]
    assert [r["model"] for r in judge_server.requests] == ["gpt-4.1-mini"] * N
    assert [r["model"] for r in policy.requests] == ["policy-model"] * N
    # The policy got the system prompt and the question.
    (first,) = [r["messages"] for r in policy.requests
                if r["messages"][-1]["content"] == gsm8k_test[0]["question"]]
    assert first[0]["role"] == "system"


def test_async_policy_client_and_rollouts_per_example(policy, judge_server):
    env = load_environment(judge_base_url=judge_server.base_url, num_eval_examples=2)
    results = env.evaluate(policy.client(), "policy-model", rollouts_per_example=3)
    assert results["errors"] == [None] * 6
    assert results["rewards"] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert len(judge_server.requests) == 6


def test_evaluate_twice_reuses_the_judge_across_event_loops(policy, judge_server):
    """Each evaluate() runs in a new event loop; the judge client must follow it."""
    env = load_environment(judge_base_url=judge_server.base_url, num_eval_examples=2)
    for _ in range(2):
        results = env.evaluate(policy.sync_client(), "policy-model")
        assert results["errors"] == [None, None]
        assert results["rewards"] == [1.0, 0.0]
    assert len(judge_server.requests) == 4


def test_numeric_verdicts_with_custom_template(
    make_scripted_server, policy, scripted_judges, numeric_template, gsm8k_test
):
    judge = make_scripted_server(handler=scripted_judges["numeric"])
    env = load_environment(
        judge_base_url=judge.base_url, judge_template=numeric_template, num_eval_examples=N
    )
    results = env.evaluate(policy.sync_client(), "policy-model")

    assert results["errors"] == [None] * N
    assert results["rewards"] == pytest.approx([1.0, 0.2, 1.0, 0.2])  # 10/10 and 2/10
    question = f"<question>{gsm8k_test[1]['question']}</question>"
    # rollouts run concurrently: find the judge request of example 1 by its question
    (prompt,) = [r["messages"][-1]["content"] for r in judge.requests
                 if question in r["messages"][-1]["content"]]
    assert prompt.startswith("Grade the response against the reference answer")
    assert f"<reference>{gsm8k_test[1]['answer']}</reference>" in prompt
    assert "<score>2</score>" in results["states"][1]["judge"][0]["response"]


def test_judge_max_score_rescales_numeric_verdicts(make_scripted_server, policy, numeric_template):
    judge = make_scripted_server(handler=lambda request: "<score>4</score>")
    env = load_environment(
        judge_base_url=judge.base_url, judge_template=numeric_template,
        judge_max_score=5, num_eval_examples=1,
    )
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert results["rewards"] == [pytest.approx(0.8)]


@pytest.mark.parametrize(
    ("aggregation", "wrong_score"),
    [("majority", 0.0), ("mean", 1 / 3), ("min", 0.0), ("max", 1.0)],
)
def test_several_judges_aggregate(make_scripted_server, policy, scripted_judges, aggregation, wrong_score):
    """Two fair judges and a lenient one: a wrong answer gets votes no, no, yes."""
    judge = make_scripted_server(handler=scripted_judges["panel"])
    judges = ["fair-a", "fair-b", "lenient-c"]
    env = load_environment(
        judge_base_url=judge.base_url, judge_models=judges, aggregation=aggregation,
        num_eval_examples=N,
    )
    results = env.evaluate(policy.sync_client(), "policy-model")

    assert results["errors"] == [None] * N
    assert results["rewards"] == pytest.approx([1.0, wrong_score, 1.0, wrong_score])
    assert sorted(r["model"] for r in judge.requests) == sorted(judges * N)
    wrong = {entry["model"]: entry["score"] for entry in results["states"][1]["judge"]}
    assert wrong == {"fair-a": 0.0, "fair-b": 0.0, "lenient-c": 1.0}
    assert all(e["response"] for s in results["states"] for e in s["judge"])


def test_judge_model_is_sent_and_sampling_args_reach_the_judge(
    make_scripted_server, policy, scripted_judges
):
    judge = make_scripted_server(handler=scripted_judges["yes_no"])
    env = load_environment(
        judge_base_url=judge.base_url, judge_model="my-judge",
        judge_sampling_args={"temperature": 0.0, "max_tokens": 64, "top_k": 5},
        num_eval_examples=1,
    )
    results = env.evaluate(policy.sync_client(), "policy-model")
    assert results["errors"] == [None]
    (request,) = judge.requests
    assert request["model"] == "my-judge"
    assert request["temperature"] == 0.0 and request["max_tokens"] == 64
    assert request["top_k"] == 5  # non-OpenAI keys travel in extra_body


def test_summary_counts_judged_rollouts(policy, judge_server):
    env = load_environment(judge_base_url=judge_server.base_url, num_eval_examples=N)
    summary = env.evaluate(policy.sync_client(), "policy-model").summary()
    assert summary["num_failed"] == 0
    assert summary["reward"]["mean"] == pytest.approx(0.5)
    assert summary["metrics"]["judge_score"]["n"] == N
    assert not math.isnan(summary["pass_at_k"][1])


def test_env_and_rubric_shape(judge_server):
    env = load_environment(judge_base_url=judge_server.base_url, num_eval_examples=3)
    assert isinstance(env, vf.SingleTurnEnv)
    assert isinstance(env.rubric, vf.JudgeRubric)
    assert env.rubric.get_reward_func_names() == ["judge_score"]
    assert env.rubric.judge_models == ["gpt-4.1-mini"]
    assert env.rubric.retry_policy.timeout == 120.0
    assert env.rubric.retry_policy.max_retries == 3


def test_authors_own_judge_reward_alongside_the_judges_score(policy, judge_server):
    """verifiers 0.1.x style on top of vf-judge: the author's function reads the judge's
    reply text from ``judge(...)``; nothing else is added to the rubric."""
    env = load_environment(judge_base_url=judge_server.base_url, num_eval_examples=N)

    async def says_yes(judge, prompt, completion, answer, state) -> float:
        reply = await judge(prompt, completion, answer, state)
        return 1.0 if reply.startswith("yes") else 0.0

    env.rubric.add_reward_func(says_yes, 0.0)
    assert env.rubric.get_reward_func_names() == ["judge_score", "says_yes"]
    results = env.evaluate(policy.sync_client(), "policy-model", num_examples=N)
    assert results["metrics"]["says_yes"] == expected_correct()
    assert results["rewards"] == expected_correct()  # weight 0: judge_score alone
    for state in results["states"]:
        (reply,) = state["judge_response"].values()
        assert reply == state["judge"][0]["response"]
