"""Environments written the way verifiers 0.1.x authors write them, run unmodified against
the real scripted OpenAI-compatible server.

Each class below follows the pattern of one kind of 0.1.x environment package (a
double-check conversation with async hooks, a tool-calling sanity check, a tool env with
hidden per-rollout arguments, a mixture of two environments), written here from scratch.
"""

import json

import pytest
from openai.types.chat import ChatCompletion

import verifiers as vf
from verifiers.testing import Reply, ToolCall
from verifiers.utils.data_utils import extract_boxed_answer

# ---------------------------------------------------------------------------------------
# multi-turn, async hooks, state["responses"]
# ---------------------------------------------------------------------------------------


class ConfirmEnv(vf.MultiTurnEnv):
    """Asks "Are you sure?" once; the episode ends after the second model response."""

    def __init__(self, client=None, model=None, dataset=None, system_prompt="Answer.",
                 few_shot=[], **kwargs):  # noqa: B006 (the 0.1.x authors' default)
        super().__init__(client=client, model=model, dataset=dataset,
                         system_prompt=system_prompt, few_shot=few_shot, **kwargs)

    async def setup_state(self, state, **kwargs):
        state["questions_asked"] = 0
        return state

    async def is_completed(self, messages, state, **kwargs):
        return len(state["responses"]) == 2

    async def env_response(self, messages, state, **kwargs):
        state["questions_asked"] += 1
        return [{"role": "user", "content": "Are you sure?"}], state


def kept_answer(completion, answer, state):
    first = state["responses"][0].choices[0].message.content
    return float(first == completion[-1]["content"] == answer)


def test_multi_turn_with_async_hooks_and_raw_responses(make_scripted_server):
    server = make_scripted_server(default_reply="4")
    env = ConfirmEnv(client=server.sync_client(), model="scripted",
                     dataset=[{"question": "2+2?", "answer": "4"}] * 3,
                     rubric=vf.Rubric(funcs=[kept_answer]), tag="kept as attribute")
    assert env.tag == "kept as attribute"
    assert env.get_reward_funcs() == [kept_answer] and env.get_reward_weights() == [1.0]

    results = env.evaluate(num_examples=2)  # client and model: the environment's

    assert results.reward == [1.0, 1.0]
    state = results.state[0]
    assert len(state["responses"]) == 2 and isinstance(state["responses"][0], ChatCompletion)
    assert state["questions_asked"] == 1 and len(state["turns"]) == 2
    assert [m["role"] for m in results.completion[0]] == ["assistant", "user", "assistant"]
    assert len(server.requests) == 4


def test_keep_responses_false_drops_them_after_scoring(make_scripted_server):
    server = make_scripted_server(default_reply="4")
    env = ConfirmEnv(dataset=[{"question": "2+2?", "answer": "4"}], keep_responses=False,
                     rubric=vf.Rubric(funcs=[kept_answer]))
    results = env.evaluate(server.client(), "scripted")
    assert results["rewards"] == [1.0]  # the rubric still saw them
    assert "responses" not in results["states"][0] and len(results["states"][0]["turns"]) == 2


# ---------------------------------------------------------------------------------------
# tool env: tool calls kept as objects, max_turns without a final environment answer
# ---------------------------------------------------------------------------------------


def add_one(x: int) -> int:
    """Add 1 to an integer.

    Args:
        x: The integer.
    """
    return x + 1


def shout(x: str) -> str:
    """Upper-case a string.

    Args:
        x: The string.
    """
    return x.upper()


def called_the_asked_tools(completion, info):
    calls = completion[-1].get("tool_calls", [])
    return float(sorted(call.function.name for call in calls) == sorted(info["tool_names"]))


def test_tool_calls_in_the_last_turn_are_kept_and_not_executed(make_scripted_server):
    calls = [ToolCall("add_one", {"x": 1}, id="c1"), ToolCall("shout", {"x": "hi"}, id="c2")]
    server = make_scripted_server(default_reply=Reply(tool_calls=calls))
    rows = [{"prompt": [{"role": "user", "content": "Call add_one and shout."}],
             "info": {"tool_names": ["shout", "add_one"]}}]
    rubric = vf.ToolRubric(tools=[add_one, shout])
    rubric.add_reward_func(called_the_asked_tools)
    env = vf.ToolEnv(dataset=rows, parser=vf.Parser(), rubric=rubric, tools=[add_one, shout],
                     max_turns=1)

    results = env.evaluate(server.client(), "scripted")

    assert results["errors"] == [None]
    assert results.metrics["called_the_asked_tools"] == [1.0]
    completion = results.completion[0]
    assert [m["role"] for m in completion] == ["assistant"]  # the call was not executed
    call = completion[0]["tool_calls"][0]
    assert call.function.name == "add_one" and json.loads(call.function.arguments) == {"x": 1}
    assert call["function"]["name"] == "add_one" and call.id == "c1"
    assert call.model_dump() == {"id": "c1", "type": "function",
                                 "function": {"name": "add_one", "arguments": '{"x": 1}'}}
    assert results.state[0]["tool_calls"] == 0 and len(server.requests) == 1
    assert env.make_dataset(results)["completion"][0][0]["tool_calls"][0]["id"] == "c1"


class LoggingToolEnv(vf.ToolEnv):
    """Overrides 0.1.x's call_tool hook to log every call."""

    async def call_tool(self, tool_name, tool_args, tool_call_id, **kwargs):
        self.calls.append((tool_name, tool_args))
        return await super().call_tool(tool_name, tool_args, tool_call_id, **kwargs)


def fails(x: int) -> int:
    """Always fails.

    Args:
        x: ignored.
    """
    raise RuntimeError(f"cannot handle {x}")


def test_call_tool_hook_and_error_formatter(make_scripted_server):
    script = [Reply(tool_calls=[ToolCall("add_one", {"x": 41}), ToolCall("fails", {"x": 2})]),
              Reply(content="42")]
    server = make_scripted_server(script=script)
    env = LoggingToolEnv(tools=[add_one, fails], dataset=[{"question": "q", "answer": "42"}],
                         error_formatter=lambda e: f"tool error: {e}", calls=[])
    results = env.evaluate(server.client(), "scripted")
    tool_messages = [m for m in results["completions"][0] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["42", "tool error: cannot handle 2"]
    assert env.calls == [("add_one", {"x": 41}), ("fails", {"x": 2})]
    assert results["states"][0]["tool_errors"] == 1
    # the follow-up request carried the tool calls back to the server
    assert server.requests[1]["messages"][-3]["tool_calls"][0]["function"]["name"] == "add_one"


# ---------------------------------------------------------------------------------------
# stateful tool env: hidden per-rollout arguments
# ---------------------------------------------------------------------------------------


def write_note(text: str, session_id: str = "") -> str:
    """Store a note.

    Args:
        text: the note.
        session_id: filled in by the environment.
    """
    return f"{session_id}:{text}"


class NotesEnv(vf.StatefulToolEnv):
    def __init__(self, **kwargs):
        super().__init__(tools=[write_note], **kwargs)
        self.sessions = 0

    async def setup_state(self, state, **kwargs):
        self.sessions += 1
        state["session_id"] = f"session-{self.sessions}"
        return state

    def update_tool_args(self, tool_args, messages, state, **kwargs):
        state["notes"] = state.get("notes", 0) + 1
        return {**tool_args, "session_id": state["session_id"]}


def test_stateful_tool_env_adds_hidden_arguments(make_scripted_server):
    script = [Reply(tool_calls=[ToolCall("write_note", {"text": "a"})]), Reply(content="done")]
    server = make_scripted_server(script=script * 2)
    env = NotesEnv(dataset=[{"question": "note a", "answer": ""}] * 2, max_turns=4)
    results = env.evaluate(server.client(), "scripted", max_concurrent=1)
    outputs = sorted(m["content"] for c in results["completions"] for m in c if m["role"] == "tool")
    assert outputs == ["session-1:a", "session-2:a"]
    assert [s["notes"] for s in results["states"]] == [1, 1]


# ---------------------------------------------------------------------------------------
# env group
# ---------------------------------------------------------------------------------------


def test_env_group_of_two_single_turn_envs(make_scripted_server):
    server = make_scripted_server(handler=lambda r: "<think>ok</think>\\boxed{7}")
    parser = vf.ThinkParser(extract_fn=extract_boxed_answer)

    def first_answer(parser, completion, answer, **kwargs):
        return 1.0 if (parser.parse_answer(completion) or "") == answer else 0.0

    def second_answer(completion, answer, **kwargs):
        return 1.0 if (parser.parse_answer(completion) or "") == answer else 0.0

    env1 = vf.SingleTurnEnv(dataset=[{"question": "3+4", "answer": "7"}],
                            system_prompt="Box the answer.", parser=parser,
                            rubric=vf.Rubric(funcs=[first_answer], weights=[1.0], parser=parser))
    env2 = vf.SingleTurnEnv(dataset=[{"question": "14/2", "answer": "7"},
                                     {"question": "2*4", "answer": "8"}],
                            system_prompt="Think, then box.", parser=parser,
                            rubric=vf.Rubric(funcs=[second_answer], weights=[1.0]))
    group = vf.EnvGroup([env1, env2], env_names=["gsm", "math"])
    results = group.evaluate(server.client(), "scripted")
    assert results.task == ["gsm", "math", "math"]
    assert results.reward == [1.0, 1.0, 0.0]
    assert results.prompt[1][0]["content"] == "Think, then box."


# ---------------------------------------------------------------------------------------
# custom rollouts, get_model_response, sampling keywords
# ---------------------------------------------------------------------------------------


class OneShotEnv(vf.Environment):
    """A custom rollout on 0.1.x's get_model_response, returning a minimal state."""

    async def rollout(self, client, model, prompt, answer="", task="default", info=None,
                      sampling_args=None, **kwargs):
        response = await self.get_model_response(client, model, prompt,
                                                 sampling_args=sampling_args)
        text = response.choices[0].message.content
        return [{"role": "assistant", "content": text}], {"responses": [response]}


def test_custom_rollout_with_minimal_state_and_no_scoring(make_scripted_server):
    server = make_scripted_server(default_reply="hello")
    env = OneShotEnv(dataset=[{"question": "hi"}] * 2)
    results = env.generate(client=server.client(), model="scripted", score_rollouts=False,
                           max_tokens=5)
    assert [c[-1]["content"] for c in results.completion] == ["hello", "hello"]
    assert results.errors == [None, None]
    assert all(r != r for r in results.reward)  # not scored: NaN, never a made-up 0.0
    assert server.requests[0]["max_completion_tokens"] == 5


def test_get_model_response_returns_the_raw_response(make_scripted_server):
    import asyncio

    server = make_scripted_server(default_reply="raw")
    chat = OneShotEnv(dataset=[{"question": "hi"}])
    prompt = [{"role": "user", "content": "hi"}]
    response = asyncio.run(chat.get_model_response(server.client(), "scripted", prompt))
    assert isinstance(response, ChatCompletion) and response.choices[0].message.content == "raw"

    text = OneShotEnv(dataset=[{"prompt": "hi"}], message_type="completion")
    with pytest.raises(ValueError, match="oai_tools are not supported"):
        asyncio.run(text.get_model_response(server.client(), "scripted", "hi",
                                            oai_tools=[vf.convert_func_to_oai_tool(add_one)]))
    response = asyncio.run(text.get_model_response(server.client(), "scripted", "hi",
                                                   sampling_args={"max_tokens": 2}))
    assert response.choices[0].text == "ra"
    assert server.requests[-1]["max_tokens"] == 2  # completions keep max_tokens


def test_rollout_sampling_keywords_reach_the_request(make_scripted_server):
    server = make_scripted_server(default_reply="x")
    env = vf.SingleTurnEnv(dataset=[{"question": "hi"}], client=server.sync_client(),
                           model="scripted")
    completion, state = env.rollout(prompt=[{"role": "user", "content": "hi"}],
                                    temperature=0.25, top_k=5, max_tokens=7)
    request = server.requests[-1]
    assert (request["temperature"], request["top_k"], request["max_completion_tokens"]) == (0.25, 5, 7)
    assert "temperature" not in state and len(state["responses"]) == 1


def test_generate_batches_and_max_workers(make_scripted_server):
    server = make_scripted_server(default_reply="x", latency_ms=40)
    env = vf.SingleTurnEnv(dataset=[{"question": str(i)} for i in range(7)], max_workers=2)
    results = env.generate(client=server.client(), model="scripted", batch_size=3,
                           max_concurrent=10)
    assert len(results["rewards"]) == 7
    assert server.stats["max_in_flight"] == 3  # a batch finishes before the next starts
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        env.generate(client=server.client(), model="scripted", batch_size=0)
    with pytest.raises(ValueError, match="max_workers"):
        vf.SingleTurnEnv(dataset=[{"question": "q"}], max_workers=0)


def test_generate_inputs_and_results_views(make_scripted_server):
    from verifiers.types import GenerateInputs

    server = make_scripted_server(default_reply="<answer>2</answer>")
    env = vf.SingleTurnEnv(dataset=[{"question": "q"}])
    inputs = GenerateInputs(prompt=[[{"role": "user", "content": "1+1"}]] * 2, answer=["2", "3"])
    results = env.generate(inputs, server.client(), "scripted")
    prompts, completions, rewards = results
    assert prompts is results["prompts"] is results.prompt
    assert completions is results.completion and rewards is results.reward
    assert results.answer == ["2", "3"] and results.task == ["default"] * 2
    assert results.info == [{}, {}] and results.metrics == results["metrics"]
    assert set(results.keys()) >= {"prompts", "completions", "rewards", "states"}
    with pytest.raises(ValueError, match="'completion' column"):
        env.generate(GenerateInputs(prompt=inputs.prompt, completion=["x", "y"]),
                     server.client(), "scripted")


def test_constructor_and_evaluate_follow_verifiers_0_1(make_scripted_server):
    with pytest.raises(ValueError, match="not supported with message_type='completion'"):
        vf.SingleTurnEnv(dataset=[{"question": "q"}], message_type="completion",
                         system_prompt="sys")
    with pytest.raises(TypeError, match="did you mean 'max_turns'"):
        vf.SingleTurnEnv(dataset=[{"question": "q"}], max_turn=2)
    server = make_scripted_server(default_reply="x")
    env = vf.SingleTurnEnv(dataset=[{"question": "q", "answer": "a"}] * 4)
    # 0.1.x positional order: client, model, sampling_args, num_examples, rollouts_per_example
    results = env.evaluate(server.client(), "scripted", {"temperature": 0.5}, 2, 2)
    assert results.num_rollouts == 4 and server.requests[0]["temperature"] == 0.5


class StepFormattedEnv(vf.SingleTurnEnv):
    """Overrides 0.1.x's format_dataset hook."""

    def format_dataset(self, dataset, system_prompt=None, few_shot=None,
                       question_key="question", answer_key="answer"):
        rows = [{"prompt": [{"role": "user", "content": f"Step: {r[question_key]}"}],
                 "answer": r[answer_key]} for r in dataset]
        return super().format_dataset(rows)


def test_format_dataset_hook_is_used():
    env = StepFormattedEnv(dataset=[{"question": "q", "answer": "a"}])
    assert env.get_dataset()[0]["prompt"] == [{"role": "user", "content": "Step: q"}]


# ---------------------------------------------------------------------------------------
# module paths, types, optional games
# ---------------------------------------------------------------------------------------


def test_verifiers_0_1_module_paths_and_names():
    from verifiers.envs.multiturn_env import MultiTurnEnv
    from verifiers.envs.singleturn_env import SingleTurnEnv
    from verifiers.envs.stateful_tool_env import StatefulToolEnv
    from verifiers.envs.textarena_env import TextArenaEnv
    from verifiers.envs.tool_env import ToolEnv
    from verifiers.types import (  # noqa: F401
        ChatMessage,
        GenerateInputs,
        GenerateOutputs,
        Info,
        Messages,
        ProcessedOutputs,
        RolloutScore,
        RolloutScores,
        SamplingArgs,
        State,
    )
    from verifiers.utils.tools import calculator

    assert (MultiTurnEnv, SingleTurnEnv, ToolEnv) == (vf.MultiTurnEnv, vf.SingleTurnEnv, vf.ToolEnv)
    assert (StatefulToolEnv, TextArenaEnv) == (vf.StatefulToolEnv, vf.TextArenaEnv)
    assert vf.Messages is Messages and vf.State is State and vf.GenerateOutputs is GenerateOutputs
    assert calculator("3 * (17 + 4)") == "63" and calculator("open('x')").startswith("Error:")


def test_text_arena_env_names_its_install_command():
    try:
        import textarena  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install textarena nltk"):
            vf.TextArenaEnv(game="Wordle-v0", num_train_examples=2)
    else:
        pytest.skip("textarena is installed here")


def test_results_model_dump_uses_the_singular_names(make_scripted_server):
    server = make_scripted_server(default_reply="x")
    env = vf.SingleTurnEnv(dataset=[{"question": "q", "answer": "a"}])
    dumped = env.evaluate(server.client(), "scripted").model_dump()
    assert list(dumped) == ["prompt", "completion", "answer", "state", "info", "task", "reward",
                            "metrics"]
    assert dumped["answer"] == ["a"] and dumped["completion"][0][0]["content"] == "x"
