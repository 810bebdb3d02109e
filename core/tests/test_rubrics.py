"""Rubrics: weighted reward functions, arguments by name, errors recorded per rollout."""

import asyncio
import math

import pytest

import verifiers as vf

PROMPT = [{"role": "user", "content": "2+2?"}]
RIGHT = [{"role": "assistant", "content": "<answer>4</answer>"}]
WRONG = [{"role": "assistant", "content": "<answer>5</answer>"}]


def correct(parser, completion, answer):
    return 1.0 if parser.parse_answer(completion) == answer else 0.0


async def async_len_penalty(completion):
    await asyncio.sleep(0)
    return -0.01 * len(completion[-1]["content"])


def uses_everything(prompt, completion, answer, state, task, info, parser, **kwargs):
    return float(task == "math" and info["level"] == 1 and isinstance(parser, vf.Parser))


def make_rubric():
    parser = vf.XMLParser(["answer"])
    return vf.Rubric(funcs=[correct, async_len_penalty, uses_everything],
                     weights=[1.0, 1.0, 0.5], parser=parser)


def test_weighted_sum_and_per_function_values():
    rubric = make_rubric()
    state = {}
    scores = rubric.score_rollout_sync(PROMPT, RIGHT, "4", state, task="math", info={"level": 1})
    assert isinstance(scores, vf.RolloutScore)
    assert scores.reward == scores["reward"] and scores.metrics["correct"] == 1.0
    assert scores.get("format", 0) == 0 and "correct" in scores
    assert scores["correct"] == 1.0
    assert scores["async_len_penalty"] == pytest.approx(-0.18)
    assert scores["uses_everything"] == 1.0
    assert scores["reward"] == pytest.approx(1.0 - 0.18 + 0.5)
    assert state["timing"]["scoring_s"] >= 0


def test_score_rollout_is_awaitable_in_async_code_and_direct_in_sync_code():
    rubric = make_rubric()
    direct = rubric.score_rollout(PROMPT, WRONG, "4", {})
    assert direct["correct"] == 0.0

    async def main():
        return await rubric.score_rollout(PROMPT, RIGHT, "4", {})

    assert asyncio.run(main())["correct"] == 1.0


def test_score_rollouts_batch_shape():
    rubric = make_rubric()
    out = rubric.score_rollouts(prompts=[PROMPT, PROMPT], completions=[RIGHT, WRONG],
                                answers=["4", "4"], states=[{}, {}], max_concurrent=1)
    assert out["correct"] == [1.0, 0.0]
    assert isinstance(out, vf.RolloutScores) and out.metrics["correct"] == out["correct"]
    assert out.reward == out["reward"] and len(out.reward) == 2
    assert set(out) == {"reward", "correct", "async_len_penalty", "uses_everything"}
    with pytest.raises(ValueError, match="same length"):
        rubric.score_rollouts(prompts=[PROMPT], completions=[], answers=[], states=[])


def test_raising_reward_function_is_recorded_not_zeroed_silently(caplog):
    def broken(completion):
        raise RuntimeError("boom")

    rubric = vf.Rubric(funcs=[correct, broken], parser=vf.XMLParser(["answer"]))
    state = {}
    scores = rubric.score_rollout_sync(PROMPT, RIGHT, "4", state)
    assert scores["correct"] == 1.0
    assert math.isnan(scores["broken"])
    assert scores["reward"] == 0.0
    assert state["error"]["type"] == "reward_error"
    assert state["error"]["func"] == "broken"
    assert "RuntimeError: boom" in state["reward_errors"]["broken"]
    assert "broken" in caplog.text


def test_non_numeric_reward_is_an_error():
    rubric = vf.Rubric(funcs=[lambda completion: "yes"])
    state = {}
    rubric.score_rollout_sync(PROMPT, RIGHT, "4", state)
    assert "must return a number" in state["error"]["message"]


def test_rubric_validates_configuration():
    with pytest.raises(ValueError, match="2 reward functions but 1 weights"):
        vf.Rubric(funcs=[correct, correct], weights=[1.0])
    with pytest.raises(TypeError, match="callable"):
        vf.Rubric(funcs=["correct"])
    with pytest.raises(ValueError, match="reward_timeout"):
        vf.Rubric(funcs=[correct], reward_timeout=0)
    with pytest.raises(TypeError, match="would replace"):
        vf.Rubric(funcs=[correct], score_rollout=1)
    rubric = vf.Rubric(funcs=[correct])
    rubric.reward_weights = [1.0, 2.0]
    with pytest.raises(ValueError, match="same length"):
        rubric.score_rollout_sync(PROMPT, RIGHT, "4", {})


def test_rubric_group_weights_and_same_named_functions_summed():
    a = vf.Rubric(funcs=[correct], parser=vf.XMLParser(["answer"]))
    b = vf.Rubric(funcs=[lambda completion: 0.5, correct], parser=vf.XMLParser(["answer"]))
    group = vf.RubricGroup([a, b])
    assert group.get_group_weights() == [1.0, 1.0]
    assert group.get_reward_func_names() == ["correct", "lambda"]
    scores = group.score_rollout_sync(PROMPT, RIGHT, "4", {})
    assert scores == {"reward": 2.5, "correct": 2.0, "lambda": 0.5}  # 0.1.x: same names summed
    batch = group.score_rollouts([PROMPT, PROMPT], [RIGHT, WRONG], ["4", "4"], [{}, {}])
    assert batch.reward == [2.5, 0.5] and batch.metrics == {"correct": [2.0, 0.0], "lambda": [0.5, 0.5]}
    original = group.get_group_weights()
    group.set_group_weights([2.0, 0.0])
    assert group.score_rollout_sync(PROMPT, RIGHT, "4", {})["reward"] == pytest.approx(2.0)
    group.set_group_weights({1: 1.0})
    assert group.get_group_weights() == [2.0, 1.0]
    group.set_group_weights(original)
    assert group.score_rollout_sync(PROMPT, RIGHT, "4", {})["reward"] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="2 rubrics"):
        group.set_group_weights([1.0])


def test_tool_rubric_counts_calls():
    def search(q: str) -> str:
        return q

    completion = [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "search", "arguments": "{}"}},
            {"id": "2", "type": "function", "function": {"name": "other", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "1", "content": "x"},
        {"role": "assistant", "content": "done"},
    ]
    rubric = vf.ToolRubric([search])
    assert rubric.get_reward_func_names() == ["total_tool_calls", "search_calls", "tool_errors"]
    scores = rubric.score_rollout_sync(PROMPT, completion, "", {"tool_errors": 1})
    assert scores["total_tool_calls"] == 2.0
    assert scores["search_calls"] == 1.0
    assert scores["tool_errors"] == 1.0
    assert scores["reward"] == 0.0
    assert asyncio.run(rubric.total_tool_calls(completion)) == 2.0  # a method, as in 0.1.x
    rubric.reward_weights[0] = -0.1  # 0.1.x's documented in-place weights
    rubric.reward_weights[1] = 0.5
    assert rubric.score_rollout_sync(PROMPT, completion, "", {}).reward == pytest.approx(0.3)
    assert rubric.oai_tools[0]["function"]["name"] == "search"


def test_tool_rubric_counts_tool_call_objects():
    from openai.types.chat import ChatCompletionMessageToolCall

    call = ChatCompletionMessageToolCall(id="1", type="function",
                                         function={"name": "search", "arguments": "{}"})
    completion = [{"role": "assistant", "content": "", "tool_calls": [call, call]}]

    def search(q: str) -> str:
        return q

    scores = vf.ToolRubric(tools=[search]).score_rollout_sync(PROMPT, completion, "", {})
    assert scores["search_calls"] == 2.0 and scores["total_tool_calls"] == 2.0


def test_none_or_nan_means_not_scored():
    def only_math(task):
        return 1.0 if task == "math" else None

    def always(completion):
        return 0.5

    rubric = vf.Rubric(funcs=[only_math, always])
    assert rubric.score_rollout_sync(PROMPT, RIGHT, "4", {}, task="math")["reward"] == 1.5
    other = rubric.score_rollout_sync(PROMPT, RIGHT, "4", {}, task="chat")
    assert other["reward"] == 0.5 and math.isnan(other["only_math"])
    nobody = vf.Rubric(funcs=[only_math])
    state = {}
    assert nobody.score_rollout_sync(PROMPT, RIGHT, "4", state, task="chat")["reward"] == 0.0
    assert "no reward function scored" in state["error"]["message"]
