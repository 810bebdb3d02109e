"""The environment end to end against the scripted server: the model (a handler) uses the
python tool, hostile programs come back to it as tool errors, persistent sessions keep
state and are cleaned up."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import sympy

from verifiers.testing import Reply, ToolCall
from vf_math_python import load_environment


def expression_of(request: dict[str, Any]) -> str:
    question = [m for m in request["messages"] if m["role"] == "user"][-1]["content"]
    found = re.search(r"What is (.*?)\?", question)
    assert found, question
    return found.group(1).replace("×", "*").replace("÷", "/")


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def solver(request: dict[str, Any]) -> Reply | str:
    """Plays a model that computes the answer with the python tool, then boxes its output."""
    results = tool_results(request)
    if not results:
        code = f"import sympy\nprint(sympy.sympify({expression_of(request)!r}))"
        return Reply(content="Let me compute it.", tool_calls=[ToolCall("python", {"code": code})])
    return f"The value is \\boxed{{{results[-1].strip()}}}."


def test_evaluate_with_the_python_tool_scores_one(make_scripted_server):
    server = make_scripted_server(handler=solver)
    env = load_environment(num_train_examples=10, num_eval_examples=12, timeout=60)
    results = env.evaluate(server.client(), "scripted", num_examples=12)
    assert results["errors"] == [None] * 12
    wrong = [f"row {i}: answer {results['answers'][i]!r}, reward {results['rewards'][i]}, "
             f"metrics {({k: v[i] for k, v in results['metrics'].items()})}, "
             f"reward errors {state.get('reward_errors')}, completion {state['completion']}"
             for i, state in enumerate(results["states"]) if results["rewards"][i] != 1.0]
    assert not wrong, "\n".join(wrong)  # a string: shown whole, where a list is cut short
    assert results["metrics"]["correct_answer"] == [1.0] * 12
    assert results["metrics"]["python_calls"] == [1.0] * 12
    assert results["metrics"]["tool_errors"] == [0.0] * 12
    # the tool schema went out with every request
    assert all(r["tools"][0]["function"]["name"] == "python" for r in server.requests)
    for state, answer in zip(results["states"], results["answers"], strict=True):
        assert state["tool_calls"] == 1
        assert state["completion"][1]["content"].strip() == answer


def test_wrong_and_unboxed_answers(make_scripted_server):
    def handler(request: dict[str, Any]) -> str:
        value = sympy.sympify(expression_of(request))
        return "I think it is \\boxed{%s}." % (value + 1) if value % 2 else f"It is {value}."

    server = make_scripted_server(handler=handler)
    env = load_environment(num_train_examples=10, num_eval_examples=20)
    results = env.evaluate(server.client(), "scripted", num_examples=20)
    for reward, penalty in zip(results["rewards"], results["metrics"]["format_penalty"],
                               strict=True):
        assert (reward, penalty) in ((0.0, 0.0), (-0.1, 1.0))
    assert -0.1 in results["rewards"] and 0.0 in results["rewards"]


def test_single_turn_evaluate(make_scripted_server):
    def handler(request: dict[str, Any]) -> str:
        assert "tools" not in request
        return f"\\boxed{{{sympy.sympify(expression_of(request))}}}"

    server = make_scripted_server(handler=handler)
    env = load_environment(use_tools=False, num_train_examples=10, num_eval_examples=8)
    results = env.evaluate(server.client(), "scripted", num_examples=8)
    assert results["rewards"] == [1.0] * 8


def test_hostile_programs_come_back_as_tool_errors(make_scripted_server, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    programs = [
        "while True: pass",
        "x = bytearray(10**10)",
        "import os\nwhile True: os.fork()",
        "f = open('big', 'wb')\nwhile True:\n    f.write(b'0' * 2**20)",
        "print(open('/etc/passwd').read())",
        f"open({str(tmp_path / 'escape.txt')!r}, 'w').write('x')",
        f"import socket\nsocket.create_connection(('127.0.0.1', {port})).sendall(b'x')",
    ]

    def handler(request: dict[str, Any]) -> Reply | str:
        done = len(tool_results(request))
        if done < len(programs):
            return Reply(tool_calls=[ToolCall("python", {"code": programs[done]})])
        return "All of that failed. \\boxed{0}"

    server = make_scripted_server(handler=handler)
    env = load_environment(num_train_examples=5, num_eval_examples=1, timeout=2,
                           max_file_mb=4, max_turns=len(programs) + 1)
    results = env.evaluate(server.client(), "scripted", num_examples=1)
    assert results["errors"] == [None]
    state = results["states"][0]
    replies = [m["content"] for m in state["completion"] if m["role"] == "tool"]
    assert len(replies) == len(programs)
    assert state["tool_calls"] == state["tool_errors"] == len(programs)
    assert results["metrics"]["tool_errors"] == [float(len(programs))]
    expected = [
        r"Error: python raised LimitExceeded: .*(CPU|[Ww]all)-?\s?time limit",
        r"Error: python raised CodeError: .*MemoryError",
        r"Error: python raised CodeError: .*Sandbox: creating processes is not allowed",
        r"Error: python raised CodeError: .*File too large",
        r"Error: python raised CodeError: .*No such file or directory: '/etc/passwd'",
        r"Error: python raised CodeError: .*No such file or directory: .*escape.txt",
        r"Error: python raised CodeError: .*Sandbox: network access is not allowed",
    ]
    for reply, pattern in zip(replies, expected, strict=True):
        assert re.search(pattern, reply, re.DOTALL), (pattern, reply)
    assert not (tmp_path / "escape.txt").exists()
    try:
        listener.accept()
        raise AssertionError("the sandbox reached the listener")
    except TimeoutError:
        pass
    finally:
        listener.close()
    assert "root:" not in json.dumps(state["completion"])


def test_persistent_python_keeps_variables_within_a_rollout(make_scripted_server, sandbox_pids):
    def handler(request: dict[str, Any]) -> Reply | str:
        results = tool_results(request)
        if not results:
            code = f"import sympy\nvalue = sympy.sympify({expression_of(request)!r})"
            return Reply(tool_calls=[ToolCall("python", {"code": code})])
        if len(results) == 1:
            return Reply(tool_calls=[ToolCall("python", {"code": "print(value)"})])
        return f"\\boxed{{{results[-1].strip()}}}"

    server = make_scripted_server(handler=handler)
    env = load_environment(num_train_examples=5, num_eval_examples=6, persistent_python=True,
                           timeout=20)
    results = env.evaluate(server.client(), "scripted", num_examples=6)
    assert results["errors"] == [None] * 6
    assert results["rewards"] == [1.0] * 6
    assert results["metrics"]["python_calls"] == [2.0] * 6
    assert env.live_sessions == 0  # every interpreter was stopped in cleanup_state
    assert all("python_session" in s for s in results["states"])
    assert sandbox_pids() == []  # and none of them is still running


def test_one_shot_python_forgets_variables(make_scripted_server):
    def handler(request: dict[str, Any]) -> Reply | str:
        results = tool_results(request)
        if not results:
            return Reply(tool_calls=[ToolCall("python", {"code": "value = 5"})])
        if len(results) == 1:
            return Reply(tool_calls=[ToolCall("python", {"code": "print(value)"})])
        return "\\boxed{5}"

    server = make_scripted_server(handler=handler)
    env = load_environment(num_train_examples=5, num_eval_examples=1)
    state = env.evaluate(server.client(), "scripted", num_examples=1)["states"][0]
    last_tool = [m for m in state["completion"] if m["role"] == "tool"][-1]["content"]
    assert "NameError: name 'value' is not defined" in last_tool
    assert state["tool_errors"] == 1
