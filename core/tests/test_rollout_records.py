"""The rollout record (vf.Rollout, vf.Turn) from input rows to results and saved runs: ids
kept end to end, columns read from the records, mapping access, failures in the record."""

import asyncio
import json
import math
import pickle
import sys
import textwrap

import pytest

import verifiers as vf
from verifiers.cli.eval import main as vf_eval
from verifiers.results import GenerateOutputs, record_to_json

TOKEN_ARGS = {"return_token_ids": True, "logprobs": True}


def echo_number(request):
    """Answers 'q N' with N."""
    return request["messages"][-1]["content"].split()[-1]


def exact(completion, answer):
    return float(completion[-1]["content"] == answer)


def env_of(rows, **kwargs):
    return vf.SingleTurnEnv(dataset=rows, rubric=vf.Rubric(funcs=[exact]), **kwargs)


def trainer_rows():
    """Rows as a trainer's round builds them: one per rollout, ids already set."""
    rows = []
    for group, question in enumerate(["q 1", "q 2"]):
        for index in range(3):
            rows.append({"prompt": [{"role": "user", "content": question}], "answer": question[-1],
                         "example_id": f"ex{group}:{index}", "group_id": f"g{group}",
                         "rollout_index": index})
    return rows


def test_ids_from_input_rows_are_kept_through_generate(make_scripted_server):
    server = make_scripted_server(handler=echo_number)
    env = env_of([{"question": "q 0", "answer": "0"}])
    results = asyncio.run(env.a_generate(trainer_rows(), server.client(), "m", progress=False))
    assert results["group_ids"] == ["g0"] * 3 + ["g1"] * 3
    assert results.group_id == results["group_ids"]
    assert results["rollout_indices"] == [0, 1, 2] * 2  # not reset to 0
    assert results["example_ids"] == [f"ex{g}:{i}" for g in range(2) for i in range(3)]
    for rollout, row in zip(results.rollouts, trainer_rows(), strict=True):
        assert isinstance(rollout, vf.Rollout)
        assert (rollout.example_id, rollout.group_id, rollout.rollout_index) == (
            row["example_id"], row["group_id"], row["rollout_index"])
        assert rollout.reward == 1.0 and rollout.metrics == {"exact": 1.0}


def test_groups_are_scored_together_by_group_id(make_scripted_server):
    seen = []

    class GroupRubric(vf.Rubric):
        async def score_rollouts(self, prompts, completions, answers, states, tasks, infos,
                                 **kwargs):
            seen.append(len(prompts))
            return {"reward": [float(len(prompts))] * len(prompts)}

    server = make_scripted_server(handler=echo_number)
    env = vf.SingleTurnEnv(dataset=[{"question": "q 0"}], rubric=GroupRubric())
    results = asyncio.run(env.a_generate(trainer_rows(), server.client(), "m", progress=False))
    assert seen == [3, 3]  # two groups of three, although every row has its own example_id
    assert results["rewards"] == [3.0] * 6


def test_group_id_defaults_to_the_example_id_and_indices_count_rollouts(make_scripted_server):
    server = make_scripted_server(handler=echo_number)
    env = env_of([{"question": f"q {i}", "answer": str(i)} for i in range(3)])
    results = env.evaluate(server.client(), "m", rollouts_per_example=2)
    assert results["example_ids"] == [0, 0, 1, 1, 2, 2]
    assert results["group_ids"] == results["example_ids"]
    assert results["rollout_indices"] == [0, 1] * 3
    # a row's rollout_index is kept only with one rollout per row; with several they count
    rows = [{"question": "q 5", "answer": "5", "rollout_index": 7, "group_id": "five"}]
    again = env.generate(rows, server.client(), "m", rollouts_per_example=2)
    assert again["rollout_indices"] == [0, 1] and again["group_ids"] == ["five", "five"]
    once = env.generate(rows, server.client(), "m")
    assert once["rollout_indices"] == [7]


def test_columns_are_views_of_the_records(make_scripted_server):
    server = make_scripted_server(handler=echo_number)
    env = env_of([{"question": f"q {i}", "answer": "1"} for i in range(4)])
    results = env.evaluate(server.client(), "m")
    rollouts = results.rollouts
    for key, field in (("prompts", "prompt"), ("completions", "completion"), ("answers", "answer"),
                       ("states", "state"), ("tasks", "task"), ("infos", "info"),
                       ("example_ids", "example_id"), ("group_ids", "group_id"),
                       ("rollout_indices", "rollout_index"), ("rewards", "reward"),
                       ("errors", "error")):
        assert results[key] == [getattr(r, field) for r in rollouts], key
    assert results["metrics"] == {"exact": [r.metrics["exact"] for r in rollouts]}
    assert all(state is r.state for state, r in zip(results["states"], rollouts, strict=True))
    assert results["rewards"] == [0.0, 1.0, 0.0, 0.0]

    rewards = results["rewards"]
    rollouts[2].reward = 5.0  # a record changed: every view shows it
    assert results.reward == [0.0, 1.0, 5.0, 0.0] and rewards is results["rewards"]
    rewards[0] = 2.0  # an item of a column changed: the record shows it
    assert results.rollouts[0].reward == 2.0
    results["rewards"] = [1, 1, 1, 1]  # a whole column: written to the records
    assert [r.reward for r in rollouts] == [1.0] * 4
    results["metrics"]["exact"][3] = 0.5
    results["metrics"]["length"] = [1, 2, 3, 4]
    assert results.rollouts[3].metrics == {"exact": 0.5, "length": 4.0}
    results["group_ids"] = ["a", "a", "b", "b"]
    assert [r.group_id for r in rollouts] == ["a", "a", "b", "b"]
    prompts, completions, rewards = results
    assert prompts is results.prompt and rewards == [1.0] * 4
    assert pickle.loads(pickle.dumps(results)).rollouts[3].metrics == rollouts[3].metrics
    rewards.append(0.0)  # a column cannot grow: the rollouts are the results
    with pytest.raises(TypeError, match="lengthened or shortened"):
        results["rewards"]
    assert results["rewards"] == [1.0] * 4
    with pytest.raises(ValueError, match="one value per rollout"):
        results["rewards"] = [1.0]


def test_results_built_from_columns_hold_records():
    results = GenerateOutputs(prompt=["a", "b"], completion=["x", "y"], reward=[1, 0],
                              example_id=[4, 5], metrics={"m": [0.5, 0.25]})
    assert [r.example_id for r in results.rollouts] == [4, 5]
    assert results["group_ids"] == [4, 5] and results["rewards"] == [1.0, 0.0]
    assert results.rollouts[1].metrics == {"m": 0.25}
    with pytest.raises(ValueError, match="differ in length"):
        GenerateOutputs(prompt=["a"], completion=["x", "y"])
    given = GenerateOutputs([{"prompt": "p", "completion": "c", "reward": 1.0, "example_id": 3}])
    given["given_rewards"] = True  # other keys are kept as given
    assert given.get("given_rewards") is True and given["group_ids"] == [3]


def test_rollout_and_turn_read_as_mappings(make_scripted_server):
    server = make_scripted_server(handler=echo_number)
    env = env_of([{"question": "q 3", "answer": "3"}], sampling_args=TOKEN_ARGS)
    seen = []
    results = asyncio.run(env.a_generate(env.get_dataset(), server.client(), "m",
                                         on_result=seen.append, progress=False))
    (record,) = seen
    assert record is results.rollouts[0]
    assert record["reward"] == record.reward == 1.0 and record.get("error") is None
    assert record.get("no such key", "default") == "default" and "group_id" in record
    assert set(dict(record)) >= {"example_id", "group_id", "rollout_index", "prompt", "completion",
                                 "answer", "task", "info", "reward", "metrics", "error", "state",
                                 "turns", "timing", "usage", "is_truncated"}
    assert record["state"]["answer"] == "3"  # the state environment authors use
    (turn,) = record.turns
    assert isinstance(turn, vf.Turn) and record.state["turns"][0] is turn  # not a copy
    assert turn["finish_reason"] == turn.finish_reason == "stop"
    assert turn.get("completion_token_ids") == [b + 3 for b in b"3"]
    assert turn["completion_logprobs"] is not None and turn.usage["completion_tokens"] == 1
    assert record.timing is record.state["timing"] and record.timing["total_s"] > 0
    assert record.usage == {"prompt_tokens": turn.usage["prompt_tokens"], "completion_tokens": 1}
    assert record.is_truncated is False
    record["reward"] = 0.25  # writing a field through the mapping
    assert results["rewards"] == [0.25]
    with pytest.raises(KeyError, match="has no field 'score'"):
        record["score"] = 1.0


def test_a_failing_rollout_has_its_error_in_the_record(make_scripted_server):
    server = make_scripted_server(handler=echo_number)
    env = env_of([{"question": f"q {i}", "answer": str(i)} for i in range(2)],
                 retry_policy=vf.RetryPolicy(max_retries=0, timeout=2.0))
    server.fail_next("500", 1)
    results = env.evaluate(server.client(), "m", max_concurrent=1)
    failed, ok = results.rollouts
    assert failed.error.startswith("model_error") and "500" in failed.error
    assert failed.state["error"]["type"] == "model_error"
    assert failed.reward == 0.0 and failed["error"] == results["errors"][0]
    assert ok.error is None and ok.reward == 1.0
    line = json.loads(record_to_json(failed))  # saved with the error's details, as before
    assert line["error"]["type"] == "model_error" and line["group_id"] == 0


def test_an_unscored_rollout_has_a_nan_reward(make_scripted_server):
    server = make_scripted_server(handler=echo_number)
    env = env_of([{"question": "q 1", "answer": "1"}])
    results = env.generate(env.get_dataset(), server.client(), "m", score_rollouts=False)
    assert math.isnan(results.rollouts[0].reward) and results.rollouts[0].metrics == {}


def test_rollout_from_a_saved_line_round_trips():
    state = {"turns": [{"prompt_token_ids": [1], "completion_token_ids": [2, 3],
                        "completion_logprobs": None, "finish_reason": "length", "usage": None}],
             "is_truncated": True, "timing": {"total_s": 1.5}}
    rollout = vf.Rollout(example_id=1, rollout_index=2, prompt="p", completion="c", reward=0.5,
                         metrics={"m": 1.0}, state=state)
    line = json.loads(record_to_json(rollout, keep_token_ids=True))
    assert line["group_id"] == 1 and line["state"]["turns"][0]["completion_token_ids"] == [2, 3]
    back = vf.Rollout.from_mapping(line)
    assert back.to_dict() == {**rollout.to_dict(), "state": line["state"]}
    assert back.is_truncated and back.timing == {"total_s": 1.5}
    with pytest.raises(ValueError, match="Unknown turn keys"):
        vf.Turn.from_mapping({"token_ids": [1]})


GROUPED_ENV = '''
import verifiers as vf


def exact(completion, answer):
    return float(completion[-1]["content"] == answer)


def load_environment():
    rows = [{"question": f"q {i}", "answer": str(i), "group_id": f"pair{i // 2}"}
            for i in range(4)]
    return vf.SingleTurnEnv(dataset=rows, rubric=vf.Rubric(funcs=[exact]))
'''


@pytest.fixture
def grouped_env(tmp_path, monkeypatch, register_env):
    """An installed environment whose rows carry their own group ids."""
    register_env(tmp_path, "vf-toy-grouped", "vf_toy_grouped", textwrap.dedent(GROUPED_ENV))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("vf_toy_grouped", None)


def test_vf_eval_saves_group_ids_and_resumes(grouped_env, make_scripted_server, tmp_path):
    server = make_scripted_server(handler=echo_number)
    out = tmp_path / "out"
    assert vf_eval(["vf-toy-grouped", "-m", "scripted", "-b", server.base_url, "-n", "4",
                    "-r", "2", "-s", "-o", str(out)]) == 0
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [(r["example_id"], r["group_id"], r["rollout_index"]) for r in lines] == [
        (i, f"pair{i // 2}", k) for i in range(4) for k in range(2)]
    assert list(lines[0]) == ["example_id", "group_id", "rollout_index", "prompt", "completion",
                              "answer", "task", "info", "reward", "metrics", "error", "state"]
    assert "turns" not in lines[0]["state"] and "timing" in lines[0]["state"]
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["summary"]["num_rollouts"] == 8 and meta["avg_reward"] == 1.0

    kept = lines[:5]  # a run cut short: resuming runs only the missing rollouts
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    healthy = make_scripted_server(handler=echo_number)
    assert vf_eval(["--resume", str(run), "-b", healthy.base_url]) == 0
    assert healthy.stats["total"] == 3
    again = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [(r["example_id"], r["group_id"], r["rollout_index"]) for r in again] == [
        (r["example_id"], r["group_id"], r["rollout_index"]) for r in lines]


class TurnsByHand(vf.MultiTurnEnv):
    """An environment that adds a turn dict of its own to state["turns"]."""

    def __init__(self, turn, **kwargs):
        super().__init__(**kwargs)
        self.extra_turn = turn

    def is_completed(self, messages, state, **kwargs):
        if state["turn"] >= 1:
            state["turns"].append(dict(self.extra_turn))
            return True
        return False

    def env_response(self, messages, state, **kwargs):
        return [], state


def test_turn_dicts_an_environment_adds_become_turns(make_scripted_server):
    server = make_scripted_server(handler=echo_number)
    rows = [{"question": "q 1", "answer": "1"}]
    env = TurnsByHand({"completion_token_ids": [5], "finish_reason": "stop"}, dataset=rows)
    (rollout,) = env.generate(rows, server.client(), "m").rollouts
    assert [type(t) for t in rollout.turns] == [vf.Turn, vf.Turn]
    assert rollout.turns[1].completion_token_ids == [5] and rollout.turns[1].usage is None
    bad = TurnsByHand({"tokens": [5]}, dataset=rows)
    with pytest.raises(TypeError, match=r"TurnsByHand: state\['turns'\] .*Unknown turn keys \['tokens'\]"):
        bad.generate(rows, server.client(), "m")


def test_repeated_reads_still_see_every_kind_of_change():
    """Columns are re-read from the records only after a write; every write path counts."""
    results = vf.GenerateOutputs(prompt=["a", "b"], completion=["x", "y"], reward=[0.0, 1.0],
                                 metrics={"m": [0.0, 1.0]})
    rewards = results["rewards"]
    assert results["rewards"] is rewards and rewards == [0.0, 1.0]
    results.rollouts[0].reward = 0.5  # a record's field
    assert results["rewards"] == [0.5, 1.0]
    results.rollouts[1].metrics["m"] = 3.0  # a record's metrics, mutated in place
    assert results["metrics"]["m"] == [0.0, 3.0]
    results["metrics"]["m"][0] = 2.0  # an item of a column
    assert results.rollouts[0].metrics["m"] == 2.0
    spare = vf.Rollout(prompt="c", completion="z", reward=0.25, metrics={"m": 1.0})
    results["rewards"]  # read after the spare record was built
    results.rollouts.append(spare)  # an existing record appended
    assert results["rewards"] == [0.5, 1.0, 0.25]
    assert results["metrics"]["m"] == [2.0, 3.0, 1.0]
    assert json.loads(json.dumps(spare.to_dict()["metrics"])) == {"m": 1.0}
