"""JudgeRubric: 0.1.x judge() replies, several judges, verdicts, errors, against real servers."""

import asyncio

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


def test_the_0_1_form_adds_no_reward_and_judge_returns_the_reply_text(make_scripted_server):
    judge = make_scripted_server(handler=lambda r: "Yes, that is right.")
    rubric = vf.JudgeRubric(judge_client=judge.client(), judge_model="j",
                            judge_prompt="Q: {question}\nRef: {answer}\nGot: {response}")
    assert rubric.get_reward_func_names() == []  # nothing added behind the author's back
    state = {}
    scores = rubric.score_rollout_sync(PROMPT, GOOD, "42", state)
    assert scores.reward == 0.0 and scores.metrics == {} and not state.get("error")

    async def ask_twice():
        first = await rubric.judge(PROMPT, GOOD, "42", state, extra="forwarded kwargs")
        second = await rubric.judge(PROMPT, GOOD, "42", state)
        return first, second

    assert asyncio.run(ask_twice()) == ("Yes, that is right.", "Yes, that is right.")
    assert len(judge.requests) == 1  # the second answer came from state["judge_response"]
    sent = judge.requests[0]["messages"][0]["content"]
    assert sent == "Q: What is 6*7?\nRef: 42\nGot: It is 42."
    assert state["judge_response"] == {sent: "Yes, that is right."}
    assert judge.requests[0]["model"] == "j"


def test_authors_reward_functions_turn_the_reply_into_a_score(make_scripted_server):
    judge = make_scripted_server(handler=lambda r: "yes" if "42" in r["messages"][0]["content"] else "no")
    rubric = vf.JudgeRubric(judge_client=judge.sync_client())

    async def judged(judge, prompt, completion, answer, state, **kwargs):  # 0.1.x's usual form
        reply = await judge(prompt, completion, answer, state, **kwargs)
        return 1.0 if "yes" in reply.lower() else 0.0

    def graded(prompt, completion, answer, state, **kwargs):  # sync, calls the rubric directly
        reply = rubric.judge(prompt, completion, answer, state, **kwargs)
        return {"yes": 0.5}.get(reply.strip().lower(), 0.0)

    rubric.add_reward_func(judged, 1.0)
    rubric.add_reward_func(graded, 2.0)
    good = rubric.score_rollout_sync(PROMPT, GOOD, "42", {})
    assert good == {"reward": 2.0, "judged": 1.0, "graded": 0.5}
    bad = rubric.score_rollout_sync(PROMPT, [{"role": "assistant", "content": "It is 41."}], "7", {})
    assert bad.reward == 0.0 and bad.metrics == {"judged": 0.0, "graded": 0.0}


def test_several_judges_aggregate_and_keep_their_replies(make_scripted_server):
    judge = make_scripted_server(handler=judge_handler)
    rubric = vf.JudgeRubric(judge_client=judge.sync_client(), judge_models=["a", "b", "strict"],
                            aggregation="majority")
    assert rubric.get_reward_func_names() == ["judge_score"]
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
    rubric = vf.JudgeRubric(judge_client=judge.client(), judge_models=["j"],
                            template="Q: {prompt}\nA: {completion}\nRef: {answer}\nScore 0-10.")
    assert rubric.score_rollout_sync(PROMPT, GOOD, "42", {})["reward"] == pytest.approx(0.6)
    sent = judge.requests[0]["messages"][0]["content"]
    assert sent == "Q: What is 6*7?\nA: It is 42.\nRef: 42\nScore 0-10."
    assert rubric.template == rubric.judge_prompt
    with pytest.raises(ValueError, match="unknown placeholder"):
        vf.JudgeRubric(judge_client=judge.client(), template="{nope}")
    with pytest.raises(ValueError, match="both judge_prompt and template"):
        vf.JudgeRubric(judge_prompt="a {question}", template="b {question}")


def test_failing_judge_is_an_error_not_a_zero(make_scripted_server):
    judge = make_scripted_server(handler=lambda r: "hmm, hard to say")
    rubric = vf.JudgeRubric(judge_client=judge.client(), judge_models=["j"],
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


def test_an_unreachable_judge_fails_the_authors_function_visibly(make_scripted_server):
    judge = make_scripted_server(default_reply="yes")
    rubric = vf.JudgeRubric(judge_client=judge.client(),
                            retry_policy=vf.RetryPolicy(max_retries=0, timeout=2.0))

    async def judged(judge, prompt, completion, answer, state):
        return 1.0 if "yes" in (await judge(prompt, completion, answer, state)).lower() else 0.0

    rubric.add_reward_func(judged)
    judge.fail_next("500")
    state = {}
    assert rubric.score_rollout_sync(PROMPT, GOOD, "42", state).reward == 0.0
    assert state["error"]["func"] == "judged" and "JudgeError" in state["error"]["message"]
    assert "judge_response" not in state  # a failure is not cached: the next call asks again
    assert rubric.score_rollout_sync(PROMPT, GOOD, "42", {}).reward == 1.0


def test_a_failed_judge_is_asked_again_on_the_next_call(make_scripted_server):
    judge = make_scripted_server(default_reply="yes")
    rubric = vf.JudgeRubric(judge_client=judge.client(), judge_models=["j"],
                            retry_policy=vf.RetryPolicy(max_retries=0, timeout=2.0),
                            judge_sampling_args={"top_k": 5})
    judge.fail_next("500")
    state = {}

    async def twice():
        with pytest.raises(JudgeError):
            await rubric.judge_score(PROMPT, GOOD, "42", state)
        return await rubric.judge_score(PROMPT, GOOD, "42", state)

    assert asyncio.run(twice()) == 1.0
    assert judge.requests[-1]["top_k"] == 5


def test_judge_rubric_takes_0_1_positional_order(make_scripted_server):
    judge = make_scripted_server(default_reply="no")
    parser = vf.XMLParser(["answer"])
    rubric = vf.JudgeRubric(parser, False, judge.client(), "model-x", {"temperature": 0}, "{response}")
    assert rubric.parser is parser and rubric.judge_model == "model-x"
    assert rubric.judge_sampling_args == {"temperature": 0}
    state = {}
    reply = rubric.judge(PROMPT, [{"role": "assistant", "content": "<answer>42</answer>"}], "42", state)
    assert reply == "no" and judge.requests[0]["messages"][0]["content"] == "42"
