"""JudgeRubric: verdict parsing, several judges, errors recorded, against real servers."""

import pytest

import verifiers as vf
from verifiers.rubrics.judge_rubric import JudgeError, aggregate, parse_verdict

PROMPT = [{"role": "user", "content": "What is 6*7?"}]
GOOD = [{"role": "assistant", "content": "It is 42."}]


@pytest.mark.parametrize("reply, score", [
    ("yes", 1.0), ("Yes, the response is correct.", 1.0), ("no", 0.0), ("Incorrect.", 0.0),
    ("Verdict: yes", 1.0), ("Reasoning...\nverdict: NO", 0.0),
    ("<score>7</score>", 0.7), ("<reasoning>fine</reasoning>\n<score>\n10\n</score>", 1.0),
    ("8/10", 0.8), ("I give it 3 out of 4", 0.75), ("Score: 9", 0.9), ("0.25", 0.25),
    ("12", 1.0), ("5", 0.5), ("1", 0.1), ("Score: 1", 0.1), ("<score>1</score>", 0.1),
    ("1.0", 1.0), ("-3", 0.0),
    ("Yes. It computes 3/4 of 20", 1.0), ("No, it should be 18 out of 20", 0.0),
    ("Verdict: no. score 9", 0.0), ("<score>0.9</score> although... no", 0.9),
])
def test_parse_verdict(reply, score):
    assert parse_verdict(reply) == pytest.approx(score)


@pytest.mark.parametrize("reply", ["", "   ", "maybe?", "I cannot decide"])
def test_unreadable_verdicts_raise(reply):
    with pytest.raises(JudgeError):
        parse_verdict(reply)


def test_aggregations():
    assert aggregate([1.0, 0.0, 1.0], "mean") == pytest.approx(2 / 3)
    assert aggregate([1.0, 0.0, 1.0], "min") == 0.0
    assert aggregate([1.0, 0.0, 1.0], "max") == 1.0
    assert aggregate([1.0, 0.0, 1.0], "majority") == 1.0
    assert aggregate([1.0, 0.0], "majority") == 0.0
    with pytest.raises(ValueError, match="Unknown aggregation"):
        aggregate([1.0], "median")


def judge_handler(request):
    """Judge 'strict' says no to everything; the others check for the reference answer."""
    text = request["messages"][-1]["content"]
    if request["model"] == "strict":
        return "no"
    return "yes" if "42" in text.split("Response:")[-1] else "no"


def test_several_judges_aggregate_and_keep_their_replies(make_scripted_server):
    judge = make_scripted_server(handler=judge_handler)
    rubric = vf.JudgeRubric(judge_client=judge.sync_client(), judge_models=["a", "b", "strict"],
                            aggregation="majority")
    state = {}
    scores = rubric.score_rollout_sync(PROMPT, GOOD, "42", state)
    assert scores == {"reward": 1.0, "judge_score": 1.0}
    assert [e["model"] for e in state["judge"]] == ["a", "b", "strict"]
    assert [e["response"] for e in state["judge"]] == ["yes", "yes", "no"]
    rubric.aggregation = "min"
    assert rubric.score_rollout_sync(PROMPT, GOOD, "42", {})["reward"] == 0.0
    assert "What is 6*7?" in judge.requests[0]["messages"][0]["content"]


def test_custom_template_and_aliases(make_scripted_server):
    judge = make_scripted_server(handler=lambda r: "<score>6</score>")
    rubric = vf.JudgeRubric(judge_client=judge.client(), judge_model="j",
                            template="Q: {prompt}\nA: {completion}\nRef: {answer}\nScore 0-10.")
    assert rubric.score_rollout_sync(PROMPT, GOOD, "42", {})["reward"] == pytest.approx(0.6)
    sent = judge.requests[0]["messages"][0]["content"]
    assert sent == "Q: What is 6*7?\nA: It is 42.\nRef: 42\nScore 0-10."
    bad = vf.JudgeRubric(judge_client=judge.client(), template="{nope}")
    state = {}
    bad.score_rollout_sync(PROMPT, GOOD, "42", state)
    assert "unknown placeholder" in state["error"]["message"]


def test_failing_judge_is_an_error_not_a_zero(make_scripted_server):
    judge = make_scripted_server(handler=lambda r: "hmm, hard to say")
    rubric = vf.JudgeRubric(judge_client=judge.client(), judge_model="j",
                            retry_policy=vf.RetryPolicy(max_retries=0, timeout=1.0))
    state = {}
    scores = rubric.score_rollout_sync(PROMPT, GOOD, "42", state)
    assert scores["reward"] == 0.0
    assert state["error"]["type"] == "reward_error"
    assert "could not read a verdict" in state["error"]["message"]
    judge.fail_next("timeout")
    state = {}
    rubric.score_rollout_sync(PROMPT, GOOD, "42", state)
    assert "timeout" in state["error"]["message"].lower()


def test_judge_is_available_to_other_reward_functions(make_scripted_server):
    judge = make_scripted_server(default_reply="yes")

    async def double_check(judge, prompt, completion, answer, state):
        return 2 * await judge(prompt, completion, answer, state)

    rubric = vf.JudgeRubric(judge_client=judge.client(), funcs=[double_check])
    assert rubric.score_rollout_sync(PROMPT, GOOD, "42", {})["double_check"] == 2.0


def test_a_failed_judge_is_asked_again_on_the_next_call(make_scripted_server):
    judge = make_scripted_server(default_reply="yes")
    rubric = vf.JudgeRubric(judge_client=judge.client(), judge_model="j",
                            retry_policy=vf.RetryPolicy(max_retries=0, timeout=2.0),
                            judge_sampling_args={"top_k": 5})
    judge.fail_next("500")
    state = {}

    async def twice():
        with pytest.raises(JudgeError):
            await rubric.judge(PROMPT, GOOD, "42", state)
        return await rubric.judge(PROMPT, GOOD, "42", state)

    import asyncio

    assert asyncio.run(twice()) == 1.0
    assert judge.requests[-1]["top_k"] == 5
