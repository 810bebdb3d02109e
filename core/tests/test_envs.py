"""Environments end to end against the real scripted OpenAI-compatible server."""

import asyncio
import json

import pytest

import verifiers as vf
from verifiers.testing import Reply, ToolCall

TOKEN_ARGS = {"return_token_ids": True, "logprobs": True}


def arithmetic_rows(n):
    return [{"question": f"{i}+{i}", "answer": str(2 * i)} for i in range(n)]


def add_handler(request):
    """Answers 'a+b' questions correctly inside <answer> tags."""
    a, b = request["messages"][-1]["content"].split("+")
    return f"<answer>{int(a) + int(b)}</answer>"


def exact(parser, completion, answer):
    return float(parser.parse_answer(completion) == answer)


def single_turn_env(n=6, **kwargs):
    parser = vf.XMLParser(["answer"])
    return vf.SingleTurnEnv(
        dataset=arithmetic_rows(n), system_prompt="Add.", parser=parser,
        rubric=vf.Rubric(funcs=[exact, parser.get_format_reward_func()], weights=[1.0, 0.5],
                         parser=parser),
        **kwargs,
    )


def test_single_turn_evaluate_with_sync_client(make_scripted_server):
    server = make_scripted_server(handler=add_handler)
    env = single_turn_env()
    results = env.evaluate(server.sync_client(), "m", num_examples=4, rollouts_per_example=2,
                           sampling_args={"temperature": 0.3, "max_tokens": 64})
    assert results["rewards"] == [1.5] * 8
    assert results["metrics"]["exact"] == [1.0] * 8
    assert results["example_ids"] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert results["rollout_indices"] == [0, 1] * 4
    assert results["prompts"][0][0] == {"role": "system", "content": "Add."}
    assert results["completions"][2] == [{"role": "assistant", "content": "<answer>2</answer>"}]
    request = server.requests[0]
    # verifiers 0.1.x sends max_tokens as the OpenAI API's max_completion_tokens in chat
    assert request["temperature"] == 0.3 and request["max_completion_tokens"] == 64
    assert "max_tokens" not in request
    assert "return_token_ids" not in request  # only sent when asked for (hosted APIs reject it)


def test_turn_records_keep_token_ids_and_logprobs(make_scripted_server):
    server = make_scripted_server(handler=add_handler)
    env = single_turn_env(sampling_args=TOKEN_ARGS)
    results = env.evaluate(server.client(), "m", num_examples=1)
    turn = results["states"][0]["turns"][0]
    text = "<answer>0</answer>"
    assert turn["completion_token_ids"] == [b + 3 for b in text.encode()]
    assert len(turn["completion_logprobs"]) == len(text)
    assert all(lp < 0 for lp in turn["completion_logprobs"])
    header = [b + 3 for b in b"<|im_start|>assistant\n"]
    assert turn["prompt_token_ids"][-len(header):] == header
    assert turn["finish_reason"] == "stop"
    assert results["states"][0]["usage"]["completion_tokens"] == len(text)


def test_max_concurrent_really_bounds_requests(make_scripted_server):
    server = make_scripted_server(handler=add_handler, latency_ms=30)
    env = single_turn_env(n=20)
    env.evaluate(server.client(), "m", rollouts_per_example=2, max_concurrent=5)
    assert server.stats["max_in_flight"] == 5
    assert server.stats["completed"] == 40


def test_failed_requests_are_recorded_and_do_not_take_the_batch_down(make_scripted_server):
    server = make_scripted_server(handler=add_handler)
    env = single_turn_env(retry_policy=vf.RetryPolicy(max_retries=0, timeout=2.0))
    server.fail_next("500", 2)
    results = env.evaluate(server.client(), "m", num_examples=6, max_concurrent=1)
    assert results.num_failed == 2
    failed = [e for e in results["errors"] if e]
    assert all(e.startswith("model_error") and "500" in e for e in failed)
    assert sorted(results["rewards"]) == [0.0, 0.0, 1.5, 1.5, 1.5, 1.5]
    assert results.summary()["reward"]["mean"] == 1.5  # failures are excluded, and counted
    assert results.summary()["num_failed"] == 2


def test_transient_failures_are_retried(make_scripted_server):
    server = make_scripted_server(handler=add_handler)
    env = single_turn_env(retry_policy=vf.RetryPolicy(max_retries=3, backoff_base=0.01, timeout=2.0))
    server.fail_next("429", 1)
    server.fail_next("garbage", 1)
    server.fail_next("drop", 1)
    results = env.evaluate(server.client(), "m", num_examples=2, max_concurrent=1)
    assert results["errors"] == [None, None]
    assert results["rewards"] == [1.5, 1.5]


def test_permanent_errors_are_not_retried(make_scripted_server):
    from verifiers.testing.server import ErrorReply

    server = make_scripted_server(script=[ErrorReply(status=401, message="bad key")])
    env = single_turn_env(retry_policy=vf.RetryPolicy(max_retries=5, backoff_base=0.01))
    results = env.evaluate(server.client(), "m", num_examples=1)
    assert "http_401" in results["errors"][0] or "401" in results["errors"][0]
    assert server.stats["total"] == 1


def test_truncated_turn_is_marked(make_scripted_server):
    server = make_scripted_server(default_reply="x" * 50)
    env = single_turn_env(sampling_args={"max_tokens": 8})
    results = env.evaluate(server.client(), "m", num_examples=1)
    state = results["states"][0]
    assert state["is_truncated"] is True
    assert state["turns"][0]["finish_reason"] == "length"


class GuessEnv(vf.MultiTurnEnv):
    """The model guesses a number; the environment says higher/lower."""

    def setup_state(self, state, **kwargs):
        state["target"] = int(state["answer"])
        return state

    def is_completed(self, messages, state, **kwargs):
        return state.get("solved", False)

    async def env_response(self, messages, state, **kwargs):
        guess = int(messages[-1]["content"])
        if guess == state["target"]:
            state["solved"] = True
            return [{"role": "user", "content": "correct"}], state
        hint = "higher" if guess < state["target"] else "lower"
        return [{"role": "user", "content": hint}], state


def guesser(request):
    """Binary search over 0..15 driven by the feedback in the conversation."""
    lo, hi = 0, 15
    messages = request["messages"]
    guess = (lo + hi) // 2
    for message in messages[2:]:
        if message["role"] == "assistant":
            guess = int(message["content"])
        elif message["content"] == "higher":
            lo = guess + 1
        elif message["content"] == "lower":
            hi = guess - 1
    return str((lo + hi) // 2)


def solved(state):
    return float(state.get("solved", False))


def test_multi_turn_loop_and_token_prefix_property(make_scripted_server):
    server = make_scripted_server(handler=guesser)
    env = GuessEnv(dataset=[{"question": "guess", "answer": "11"}], max_turns=6,
                   rubric=vf.Rubric(funcs=[solved]), sampling_args=TOKEN_ARGS, system_prompt="0-15")
    results = env.evaluate(server.client(), "m")
    state = results["states"][0]
    assert results["rewards"] == [1.0]
    guesses = [m["content"] for m in results["completions"][0] if m["role"] == "assistant"]
    assert guesses == ["7", "11"]
    assert state["turn"] == 2
    first, second = state["turns"]
    seen = first["prompt_token_ids"] + first["completion_token_ids"]
    assert second["prompt_token_ids"][: len(seen)] == seen


def test_max_turns_caps_the_episode(make_scripted_server):
    server = make_scripted_server(default_reply="0")
    env = GuessEnv(dataset=[{"question": "guess", "answer": "11"}], max_turns=3,
                   rubric=vf.Rubric(funcs=[solved]))
    results = env.evaluate(server.client(), "m")
    assert results["states"][0]["turn"] == 3
    assert results["rewards"] == [0.0]


def test_rollout_is_callable_from_sync_code(make_scripted_server):
    """The training guide calls env.rollout(...) in a plain loop and unpacks (completion, state)."""
    server = make_scripted_server(handler=add_handler)
    env = single_turn_env()
    row = env.get_dataset()[3]
    completion, state = env.rollout(client=server.sync_client(), model="m", prompt=row["prompt"],
                                    answer=row["answer"], sampling_args={"temperature": 0.7})
    assert completion[-1]["content"] == "<answer>6</answer>"
    score = env.rubric.score_rollout_sync(prompt=row["prompt"], completion=completion,
                                          answer=row["answer"], state={})
    assert score["reward"] == 1.5


def test_completion_message_type(make_scripted_server):
    server = make_scripted_server(rules=[(r"3\+3", " <answer>6</answer>")])
    parser = vf.XMLParser(["answer"])
    env = vf.SingleTurnEnv(dataset=[{"question": "3+3", "answer": "6"}], message_type="completion",
                           parser=parser, rubric=vf.Rubric(funcs=[exact], parser=parser),
                           sampling_args={"return_token_ids": True})
    results = env.evaluate(server.client(), "m")
    assert results["prompts"][0] == "3+3"
    assert results["completions"][0] == " <answer>6</answer>"
    assert results["rewards"] == [1.0]
    assert server.requests[0]["_path"].endswith("/completions")


def calculator(expression: str, precision: int = 2) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: Python arithmetic, e.g. "2 * (3 + 4)".
        precision: digits after the decimal point.
    """
    if any(c not in "0123456789+-*/(). " for c in expression):
        raise ValueError("only arithmetic is allowed")
    return f"{eval(expression):.{precision}f}"


def test_tool_schema_from_signature_and_docstring():
    schema = vf.convert_func_to_oai_tool(calculator)
    function = schema["function"]
    assert function["name"] == "calculator"
    assert function["description"] == "Evaluate an arithmetic expression."
    params = function["parameters"]
    assert params["required"] == ["expression"]
    assert params["properties"]["expression"]["type"] == "string"
    assert params["properties"]["precision"] == {
        "type": "integer", "description": "digits after the decimal point.", "default": 2}


def test_tool_env_runs_tools_and_reports_bad_calls_to_the_model(make_scripted_server):
    calls = [
        ToolCall("calculator", {"expression": "6*7"}),
        ToolCall("calculator", "{not json"),
        ToolCall("calculator", json.dumps(json.dumps({"expression": "1+1"}))),
        ToolCall("missing_tool", {}),
        ToolCall("calculator", {"expression": "__import__('os')"}),
        ToolCall("calculator", {"expr": "1"}),
    ]
    server = make_scripted_server(script=[Reply(tool_calls=calls), Reply(content="<answer>42</answer>")])
    parser = vf.XMLParser(["answer"])
    env = vf.ToolEnv(tools=[calculator], dataset=[{"question": "6*7?", "answer": "42"}],
                     parser=parser, rubric=vf.RubricGroup([
                         vf.Rubric(funcs=[exact], parser=parser), vf.ToolRubric([calculator])]))
    results = env.evaluate(server.client(), "m")
    assert results["errors"] == [None]
    tool_messages = [m["content"] for m in results["completions"][0] if m["role"] == "tool"]
    assert tool_messages[0] == "42.00"
    assert "not valid JSON" in tool_messages[1]
    assert "encoded twice" in tool_messages[2]
    assert "unknown tool 'missing_tool'" in tool_messages[3]
    assert "raised ValueError: only arithmetic" in tool_messages[4]
    assert "bad arguments for calculator" in tool_messages[5]
    state = results["states"][0]
    assert state["tool_calls"] == 6 and state["tool_errors"] == 5
    assert results["rewards"] == [1.0]
    assert results["metrics"]["tool_errors"] == [5.0]
    assert server.requests[0]["tools"][0]["function"]["name"] == "calculator"


def test_env_group_routes_by_task(make_scripted_server):
    server = make_scripted_server(handler=lambda r: add_handler(r) if "+" in r["messages"][-1]["content"] else "11")
    math_env = single_turn_env(n=3)
    guess_env = GuessEnv(dataset=[{"question": "guess", "answer": "11"}], rubric=vf.Rubric(funcs=[solved]))
    group = vf.EnvGroup([math_env, guess_env], env_names=["math", "guess"])
    assert group.get_dataset()["task"] == ["math"] * 3 + ["guess"]
    results = group.evaluate(server.client(), "m")
    assert results["tasks"] == ["math", "math", "math", "guess"]
    assert results["rewards"] == [1.5, 1.5, 1.5, 1.0]
    assert set(results["metrics"]) == {"exact", "format_reward", "solved"}


def test_generate_make_dataset_and_process(make_scripted_server):
    from verifiers.testing.server import encode

    server = make_scripted_server(handler=add_handler)
    env = single_turn_env(n=5)
    results = env.generate(client=server.sync_client(), model="m", n_samples=3,
                           sampling_args=TOKEN_ARGS)
    assert len(results["rewards"]) == 3
    dataset = env.make_dataset(results)
    assert dataset.column_names[:4] == ["example_id", "prompt", "completion", "answer"]
    assert dataset["reward"] == [1.5, 1.5, 1.5]
    processed = env.process_env_results(results["prompts"], results["completions"],
                                        results["states"], results["rewards"], processing_class=None)
    assert len(processed) == 3
    sample = next(iter(processed))
    assert sample["completion_ids"] == encode("<answer>0</answer>")
    assert sample["completion_mask"] == [1] * len(sample["completion_ids"])
    assert sample["rewards"] == 1.5


def test_generate_inside_a_running_loop(make_scripted_server):
    server = make_scripted_server(handler=add_handler)
    env = single_turn_env(n=2)

    async def main():
        sync = env.generate(client=server.sync_client(), model="m")  # runs in a helper thread
        direct = await env.a_generate(env.get_dataset(), server.client(), "m")
        return sync, direct

    sync, direct = asyncio.run(main())
    assert sync["rewards"] == direct["rewards"] == [1.5, 1.5]


def test_environment_argument_errors():
    with pytest.raises(TypeError, match="unexpected arguments \\['datset'\\]"):
        vf.SingleTurnEnv(datset=[])
    with pytest.raises(ValueError, match="neither a 'prompt' nor a 'question'"):
        vf.SingleTurnEnv(dataset=[{"text": "hi"}])
    with pytest.raises(ValueError, match="needs a dataset"):
        vf.SingleTurnEnv()
    env = single_turn_env()
    with pytest.raises(ValueError, match="rollouts_per_example"):
        env.generate(client=None, model="m", sampling_args={"n": 4})
