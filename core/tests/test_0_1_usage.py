"""Environments written the way verifiers 0.1.x's own examples write them, unmodified,
evaluated against the scripted server: parsers with alternative tags, rubrics that
override ``score_rollouts`` / ``score_rollout``, judges, the math rubric and example data."""

import itertools
import json
import threading

import pytest

import verifiers as vf
from verifiers.utils.data_utils import (
    BOXED_SYSTEM_PROMPT,
    extract_boxed_answer,
    load_example_dataset,
)

QUESTIONS = [{"question": f"What is {a} + {a}?", "answer": str(2 * a)} for a in range(1, 5)]


def cycling_handler(replies_for):
    """A server handler that answers each question with the next of its replies, in turn."""
    counters, lock = {}, threading.Lock()

    def handler(request):
        question = request["messages"][-1]["content"]
        with lock:
            cycle = counters.setdefault(question, itertools.cycle(replies_for(question)))
            return next(cycle)

    return handler


def number_in(question):
    return int(question.split()[2])


# -- single turn with an XMLParser of alternatives (0.1.x's reverse_text / xml tool style) ----
def load_alternatives_environment():
    parser = vf.XMLParser(["think", ("answer", "final")], answer_field="answer")
    system_prompt = f"Add the numbers.\n\nRespond in the following format:\n{parser.get_format_str()}"

    def correct_answer_reward_func(completion, answer, **kwargs) -> float:
        parsed = parser.parse(completion[-1]["content"])
        given = parsed.answer if parsed.answer is not None else parsed.final
        return 1.0 if given == answer else 0.0

    rubric = vf.Rubric(funcs=[correct_answer_reward_func, parser.get_format_reward_func()],
                       weights=[1.0, 0.2])
    return vf.SingleTurnEnv(dataset=QUESTIONS, system_prompt=system_prompt, parser=parser,
                            rubric=rubric)


def test_single_turn_xml_parser_with_alternative_tags(make_scripted_server):
    def replies(question):
        a = number_in(question)
        return [f"<think>\n{a}+{a}\n</think>\n<answer>\n{2 * a}\n</answer>",
                f"<think>\nhm\n</think>\n<final>{2 * a}</final>",
                f"I think it is {2 * a}"]

    server = make_scripted_server(handler=cycling_handler(replies))
    env = load_alternatives_environment()
    assert "<[ answer | final ]>" in env.dataset[0]["prompt"][0]["content"]
    results = env.evaluate(server.client(), "m", num_examples=2, rollouts_per_example=3,
                           max_concurrent=1)  # replies cycle in request order
    assert results["metrics"]["correct_answer_reward_func"] == [1.0, 1.0, 0.0] * 2
    assert results["metrics"]["format_reward"] == pytest.approx([1.0, 1.0, 0.2] * 2)
    assert results["rewards"] == pytest.approx([1.2, 1.2, 0.04] * 2)
    assert results.num_failed == 0


# -- a rubric overriding score_rollouts: majority vote among an example's rollouts ------------
class MajorityVoteRubric(vf.Rubric):
    """1.0 for rollouts that agree with the most common answer of their example."""

    def __init__(self, parser, **kwargs):
        super().__init__(parser=parser, **kwargs)
        self.group_sizes = []

    async def score_rollouts(self, prompts, completions, answers, states, tasks, infos,
                             max_concurrent=-1, **kwargs):
        self.group_sizes.append(len(prompts))
        given = [self.parser.parse_answer(c) for c in completions]
        votes = {}
        for key, value in zip((json.dumps(p) for p in prompts), given):
            votes.setdefault(key, []).append(value)
        majority = {k: max(set(v), key=v.count) for k, v in votes.items()}
        agrees = [float(g == majority[json.dumps(p)]) for p, g in zip(prompts, given)]
        correct = [float(g == a) for g, a in zip(given, answers)]
        return vf.RolloutScores(reward=agrees, metrics={"agrees": agrees, "correct": correct})


def test_an_overridden_score_rollouts_scores_each_examples_group(make_scripted_server):
    def replies(question):
        a = number_in(question)
        return [f"<answer>{2 * a}</answer>", f"<answer>{2 * a}</answer>", f"<answer>{a}</answer>"]

    server = make_scripted_server(handler=cycling_handler(replies))
    parser = vf.XMLParser(["answer"])
    rubric = MajorityVoteRubric(parser)
    env = vf.SingleTurnEnv(dataset=QUESTIONS, parser=parser, rubric=rubric)
    results = env.evaluate(server.client(), "m", num_examples=3, rollouts_per_example=3,
                           max_concurrent=1)
    assert rubric.group_sizes == [3, 3, 3]  # one call per example, with all of its rollouts
    assert results["rewards"] == [1.0, 1.0, 0.0] * 3
    assert results["metrics"]["correct"] == [1.0, 1.0, 0.0] * 3

    grouped = vf.RubricGroup([rubric, vf.Rubric(funcs=[lambda completion: 0.5])])
    env.rubric = grouped
    results = env.evaluate(server.client(), "m", num_examples=1, rollouts_per_example=3,
                           max_concurrent=1)
    assert results["rewards"] == [1.5, 1.5, 0.5]  # the member's override is honoured
    assert set(results["metrics"]) == {"agrees", "correct", "lambda"}


def test_env_group_members_score_through_their_own_score_rollouts(make_scripted_server):
    def replies(question):
        a = number_in(question)
        return [f"<answer>{2 * a}</answer>", f"<answer>{a}</answer>", f"<answer>{2 * a}</answer>"]

    server = make_scripted_server(handler=cycling_handler(replies))
    parser = vf.XMLParser(["answer"])
    voting = MajorityVoteRubric(parser)
    vote_env = vf.SingleTurnEnv(dataset=QUESTIONS[:2], parser=parser, rubric=voting)
    plain_env = vf.SingleTurnEnv(dataset=QUESTIONS[2:], parser=parser,
                                 rubric=vf.Rubric(funcs=[lambda completion: 0.5]))
    group = vf.EnvGroup([vote_env, plain_env], env_names=["vote", "plain"])
    results = group.evaluate(server.client(), "m", rollouts_per_example=3, max_concurrent=1)
    assert voting.group_sizes == [3, 3]
    assert results["rewards"] == [1.0, 0.0, 1.0] * 2 + [0.5] * 6
    assert results["metrics"]["agrees"][:6] == [1.0, 0.0, 1.0] * 2


def test_an_overridden_score_rollout_is_used(make_scripted_server):
    class LengthRubric(vf.Rubric):
        async def score_rollout(self, prompt, completion, answer, state, task="default",
                                info=None, **kwargs):
            n = len(completion[-1]["content"])
            return vf.RolloutScore(reward=n / 100, metrics={"length": float(n)})

    server = make_scripted_server(default_reply="x" * 50)
    env = vf.SingleTurnEnv(dataset=QUESTIONS, rubric=LengthRubric())
    results = env.evaluate(server.client(), "m", num_examples=2)
    assert results["rewards"] == [0.5, 0.5] and results["metrics"]["length"] == [50.0, 50.0]


def test_a_failing_score_rollouts_override_is_recorded_on_its_rollouts(make_scripted_server):
    class Broken(vf.Rubric):
        async def score_rollouts(self, *args, **kwargs):
            raise RuntimeError("vote server down")

    server = make_scripted_server(default_reply="4")
    results = vf.SingleTurnEnv(dataset=QUESTIONS, rubric=Broken()).evaluate(server.client(), "m")
    assert results.num_failed == 4 and results["rewards"] == [0.0] * 4
    assert "Broken.score_rollouts raised RuntimeError: vote server down" in results["errors"][0]


# -- a judge added to an environment's rubric (0.1.x's wiki_search / gpqa pattern) ------------
def test_judge_reward_added_to_an_environments_rubric(make_scripted_server):
    policy = make_scripted_server(handler=lambda r: f"<answer>{2 * number_in(r['messages'][-1]['content'])}</answer>")
    judge = make_scripted_server(handler=lambda r: "yes" if "Response:\n```\n2\n" in r["messages"][0]["content"] else "no")
    parser = vf.XMLParser(["answer"])
    env = vf.SingleTurnEnv(dataset=QUESTIONS, parser=parser,
                           rubric=vf.Rubric(funcs=[lambda completion: 0.25], parser=parser))
    judge_rubric = vf.JudgeRubric(judge_client=judge.client(), judge_model="judge", parser=env.parser)

    async def judge_reward_func(judge, prompt, completion, answer, state) -> float:
        judge_response = await judge(prompt, completion, answer, state)
        return 1.0 if "yes" in judge_response.lower() else 0.0

    judge_rubric.add_reward_func(judge_reward_func, weight=1.0)
    env.rubric = vf.RubricGroup(rubrics=[judge_rubric, env.rubric])
    results = env.evaluate(policy.client(), "m", num_examples=2)
    assert results["metrics"]["judge_reward_func"] == [1.0, 0.0]
    assert results["rewards"] == [1.25, 0.25]
    assert all(len(s["judge_response"]) == 1 for s in results["states"])


# -- gsm8k the 0.1.x way: example data, boxed answers, MathRubric ------------------------------
@pytest.fixture
def example_data(tmp_path, monkeypatch):
    rows = {
        "gsm8k/train.jsonl": [{"question": "Tom has 3 apples and buys 4. How many now?",
                               "answer": "3 + 4 = 7\n#### 7"},
                              {"question": "A box holds 1,000 pens; 2 boxes?",
                               "answer": "2 * 1000\n#### 2,000"}],
        "math/train.jsonl": [{"problem": "Simplify 2/4.", "solution": "It is $\\boxed{\\frac{1}{2}}$."}],
    }
    for name, items in rows.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in items))
    monkeypatch.setenv("VF_DATA_DIR", str(tmp_path))
    return tmp_path


def test_load_example_dataset_reads_local_rows(example_data):
    gsm8k = load_example_dataset("gsm8k", split="train")
    assert gsm8k.column_names == ["question", "answer"]
    assert gsm8k["answer"] == ["7", "2000"]
    assert load_example_dataset("math", "train")[0] == {"question": "Simplify 2/4.", "answer": "\\frac{1}{2}"}
    assert len(load_example_dataset("gsm8k", "train", n=1)) == 1
    with pytest.raises(ValueError, match="Unknown example dataset 'gsm9k'.*gsm8k"):
        load_example_dataset("gsm9k")


def test_gsm8k_environment_with_math_rubric(example_data, make_scripted_server):
    pytest.importorskip("math_verify")

    def solve(request):
        question = request["messages"][-1]["content"]
        return "<think>count</think> \\boxed{7}" if "apples" in question else "<think>x</think> \\boxed{2000.0}"

    def load_environment(use_think=True, system_prompt=BOXED_SYSTEM_PROMPT):
        dataset = load_example_dataset("gsm8k", split="train")
        parser = (vf.ThinkParser(extract_fn=extract_boxed_answer) if use_think
                  else vf.Parser(extract_fn=extract_boxed_answer))
        rubric = vf.MathRubric(parser=parser)
        rubric.add_reward_func(parser.get_format_reward_func(), weight=0.0)
        return vf.SingleTurnEnv(dataset=dataset, system_prompt=system_prompt, parser=parser,
                                rubric=rubric)

    server = make_scripted_server(handler=solve)
    env = load_environment()
    assert env.dataset[0]["prompt"][0]["content"] == BOXED_SYSTEM_PROMPT
    results = env.evaluate(server.client(), "m")
    assert results["metrics"]["correct_answer_reward_func"] == [1.0, 1.0]  # 2000.0 == 2000
    assert results["rewards"] == [1.0, 1.0]


def test_math_rubric_without_math_verify_says_so_and_compares_plainly(caplog):
    from verifiers.rubrics import math_rubric

    assert math_rubric.plain_match("\\frac{1}{2}", "0.5") and math_rubric.plain_match(" 7 ", "7.0")
    assert math_rubric.plain_match("\\dfrac{1}{2}", "\\frac{1}{2}")
    assert not math_rubric.plain_match("x+1", "1+x") and not math_rubric.plain_match("3", "4")
    original = math_rubric._math_verify
    math_rubric._math_verify = lambda: None
    try:
        rubric = vf.MathRubric()
    finally:
        math_rubric._math_verify = original
    assert "math-verify is not installed" in caplog.text
    said = [{"role": "assistant", "content": "<think>a</think> \\boxed{1/2}"}]
    assert rubric.score_rollout_sync([], said, "\\frac{1}{2}", {}).reward == 1.0
    assert rubric.score_rollout_sync([], said, "3", {}).reward == 0.0
