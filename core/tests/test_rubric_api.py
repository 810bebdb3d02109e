"""Rubric's verifiers 0.1.x surface, and synchronous reward functions off the event loop."""

import asyncio
import logging
import math
import threading

import pytest

import verifiers as vf

PROMPT = [{"role": "user", "content": "2+2?"}]
RIGHT = [{"role": "assistant", "content": "<answer>4</answer>"}]
WRONG = [{"role": "assistant", "content": "<answer>5</answer>"}]


def correct(parser, completion, answer):
    return 1.0 if parser.parse_answer(completion) == answer else 0.0


def test_call_reward_func_passes_only_accepted_arguments():
    rubric = vf.Rubric(parser=vf.XMLParser(["answer"]))
    seen = {}

    def needs_two(completion, answer):
        seen.update(completion=completion, answer=answer)
        return 1

    value = asyncio.run(rubric.call_reward_func(needs_two, PROMPT, RIGHT, "4", {}))
    assert value == 1.0 and isinstance(value, float)
    assert seen == {"completion": RIGHT, "answer": "4"}
    assert asyncio.run(rubric.call_reward_func(correct, PROMPT, RIGHT, "4", {}, task="t")) == 1.0

    def broken(completion):
        raise ValueError("bad")

    state = {}
    assert math.isnan(asyncio.run(rubric.call_reward_func(broken, PROMPT, RIGHT, "4", state)))
    assert state["reward_errors"] == {"broken": "ValueError: bad"}


def test_reward_funcs_and_weights_assigned_after_construction():
    class XMLCheckRubric(vf.Rubric):  # the pattern of 0.1.x's tool rubrics
        def __init__(self, parser):
            super().__init__(parser=parser)
            self.reward_funcs = [self.correct_answer_reward_func, parser.get_format_reward_func()]
            self.reward_weights = [1.0, 0.2]

        def correct_answer_reward_func(self, completion, answer, **kwargs):
            return 1.0 if self.parser.parse_answer(completion) == answer else 0.0

    rubric = XMLCheckRubric(vf.XMLParser(["think", "answer"]))
    assert rubric.get_reward_func_names() == ["correct_answer_reward_func", "format_reward"]
    scores = rubric.score_rollout_sync(PROMPT, RIGHT, "4", {})
    assert scores.metrics["correct_answer_reward_func"] == 1.0
    assert scores.reward == pytest.approx(1.0 + 0.2 * 0.6)  # format: 0.4*1/2 + 0.2 + 0.2 (end)
    rubric.reward_weights = [2.0, 0.0]
    assert rubric.score_rollout_sync(PROMPT, RIGHT, "4", {}).reward == 2.0
    rubric.reward_funcs.append(lambda completion: 1.0)
    rubric.reward_weights.append(0.5)
    assert rubric.score_rollout_sync(PROMPT, RIGHT, "4", {}).reward == 2.5


def test_extra_keywords_are_attributes_and_reach_reward_functions():
    def uses_limit(completion, limit):
        return float(len(completion) <= limit)

    rubric = vf.Rubric(funcs=[uses_limit], limit=3)
    assert rubric.limit == 3 and rubric.class_objects["limit"] == 3
    assert rubric.score_rollout_sync(PROMPT, RIGHT, "4", {}).reward == 1.0
    assert isinstance(rubric.logger, logging.Logger) and rubric.logger.name == "verifiers.rubrics.Rubric"
    rubric.class_objects = {"parser": rubric.parser, "limit": 0}  # 0.1.x's documented pattern
    assert rubric.score_rollout_sync(PROMPT, RIGHT, "4", {}).reward == 0.0


def test_sync_reward_functions_run_in_a_thread_while_the_loop_serves():
    opened = threading.Event()
    threads = {}

    def waits_for_the_loop(completion):
        threads["sync"] = threading.current_thread().name
        return 1.0 if opened.wait(timeout=10) else 0.0  # would time out if run on the loop

    async def opens_from_the_loop(completion):
        threads["async"] = threading.current_thread().name
        await asyncio.sleep(0.01)
        opened.set()
        return 1.0

    parser = vf.XMLParser(["answer"])
    format_reward = parser.get_format_reward_func()

    rubric = vf.Rubric(funcs=[waits_for_the_loop, opens_from_the_loop, format_reward], parser=parser)
    scores = rubric.score_rollout_sync(PROMPT, RIGHT, "4", {})
    assert scores.metrics["waits_for_the_loop"] == 1.0 and scores.metrics["opens_from_the_loop"] == 1.0
    assert threads["sync"].startswith("vf-reward-")
    assert threads["async"] == threading.current_thread().name


def test_a_sync_reward_function_past_its_time_limit_is_a_recorded_error():
    release = threading.Event()

    def runaway(completion):
        release.wait(timeout=30)  # stands in for a computation that does not end
        return 1.0

    def quick(completion):
        return 0.5

    rubric = vf.Rubric(funcs=[runaway, quick], reward_timeout=0.2)
    states = [{}, {}]
    try:
        out = rubric.score_rollouts([PROMPT, PROMPT], [RIGHT, RIGHT], ["4", "4"], states)
    finally:
        release.set()  # let the abandoned threads finish
    assert out.reward == [0.0, 0.0] and out.metrics["quick"] == [0.5, 0.5]
    assert all(math.isnan(v) for v in out.metrics["runaway"])
    for state in states:
        assert state["error"]["type"] == "reward_error" and state["error"]["func"] == "runaway"
        assert "RewardTimeout" in state["error"]["message"]
        assert "reward_timeout=0.2" in state["error"]["message"]


def test_an_async_reward_function_past_its_time_limit_is_a_recorded_error():
    async def slow(completion):
        await asyncio.sleep(30)
        return 1.0

    state = {}
    scores = vf.Rubric(funcs=[slow], reward_timeout=0.1).score_rollout_sync(PROMPT, RIGHT, "4", state)
    assert scores.reward == 0.0 and "RewardTimeout" in state["error"]["message"]


def test_evaluation_completes_around_a_runaway_sync_reward_function(make_scripted_server):
    release = threading.Event()
    server = make_scripted_server(default_reply="<answer>4</answer>")

    def stuck_on_example_one(completion, info):
        if info.get("stuck"):
            release.wait(timeout=60)
        return 1.0

    rows = [{"question": f"q{i}", "answer": "4", "info": {"stuck": i == 1}} for i in range(4)]
    env = vf.SingleTurnEnv(dataset=rows, rubric=vf.Rubric(funcs=[stuck_on_example_one],
                                                           reward_timeout=0.3))
    try:
        results = env.evaluate(server.client(), "m", rollouts_per_example=2)
    finally:
        release.set()
    assert results["rewards"] == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert [e is not None for e in results["errors"]] == [False, False, True, True] + [False] * 4
    assert "RewardTimeout" in results["errors"][2]
    assert results.summary()["num_failed"] == 2


def test_returned_numbers_of_any_real_type_are_accepted():
    import fractions

    rubric = vf.Rubric(funcs=[lambda completion: fractions.Fraction(1, 4), lambda completion: True])
    assert rubric.score_rollout_sync(PROMPT, RIGHT, "4", {}).reward == 1.25


def test_rollout_score_objects_read_as_mappings():
    score = vf.RolloutScore(reward=1.5, metrics={"correct": 1.0, "format": 0.5})
    assert score["reward"] == 1.5 and score.get("format", 0) == 0.5 and score.get("x", 0) == 0
    assert dict(score) == {"reward": 1.5, "correct": 1.0, "format": 0.5}
    assert score.model_dump() == {"reward": 1.5, "metrics": {"correct": 1.0, "format": 0.5}}
    batch = vf.RolloutScores(reward=[1.0, 0.0], metrics={"correct": [1.0, 0.0]})
    assert batch["reward"] == [1.0, 0.0] and batch.get("correct") == [1.0, 0.0]
    assert batch.rollout(1) == {"reward": 0.0, "correct": 0.0}
    batch.reward = [2.0, 2.0]  # 0.1.x overrides assign the fields
    assert batch["reward"] == [2.0, 2.0]
    with pytest.raises(ValueError, match="returned scores for 2 rollouts"):
        batch.check_length(3, "MyRubric.score_rollouts")
