"""Fixtures for the core's tests."""

import sys
import textwrap

import pytest

from verifiers.testing import Reply, ToolCall


@pytest.fixture
def installed_envs(tmp_path, monkeypatch):
    """Two environment 'distributions' on sys.path, registered through real entry points
    (a dist-info folder, exactly what pip writes), without touching the venv."""
    for dist, module in (("vf-toy-math", "vf_toy_math"), ("vf-toy-game", "vf_toy_game")):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent('''
            import verifiers as vf

            def load_environment(num_examples: int = 3, greeting: str = "hi"):
                rows = [{"question": f"{greeting} {i}", "answer": str(i)} for i in range(num_examples)]
                return vf.SingleTurnEnv(dataset=rows)
        '''))
        info = tmp_path / f"{module}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(
            f"[verifiers.environments]\n{dist} = {module}:load_environment\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in ("vf_toy_math", "vf_toy_game"):
        sys.modules.pop(module, None)


# A ToolEnv package and a saved vf-eval run of it (tool calls, 0/1 rewards, one failure).

WORDS = ["alpha", "beta", "gamma", "delta"]

TOOL_ENV = '''
import verifiers as vf

WORDS = {words!r}


def reverse(word: str) -> str:
    """Reverse a word.

    Args:
        word: the word to reverse.
    """
    return word[::-1]


def correct_answer(completion, answer) -> float:
    return 1.0 if completion[-1]["content"].strip() == answer else 0.0


def load_environment(num_examples: int = 4):
    rows = [{{"question": w, "answer": w[::-1]}} for w in WORDS[:num_examples]]
    return vf.ToolEnv(tools=[reverse], dataset=rows, rubric=vf.Rubric(funcs=[correct_answer]))
'''


@pytest.fixture
def tool_env_installed(tmp_path, monkeypatch):
    """vf-toy-tools: a ToolEnv package registered through a real entry point (a dist-info
    folder), as ``installed_envs`` does."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "vf_toy_tools.py").write_text(TOOL_ENV.format(words=WORDS))
    info = site / "vf_toy_tools-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vf-toy-tools\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[verifiers.environments]\nvf-toy-tools = vf_toy_tools:load_environment\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("vf_toy_tools", None)


def tool_user(request):
    """Calls the tool on the word, then answers with its result ('beta' is answered wrong)."""
    messages = request["messages"]
    word = next(m["content"] for m in messages if m["role"] == "user")
    if messages[-1]["role"] == "user":
        return Reply(tool_calls=[ToolCall("reverse", {"word": word})])
    return "wrong" if word == "beta" else messages[-1]["content"]


@pytest.fixture
def tool_eval(tool_env_installed, make_scripted_server, tmp_path):
    """``(run folder, what vf-eval printed)`` for ``vf-eval vf-toy-tools -n 4 -r 2 -s``."""
    import contextlib
    import io

    from verifiers.cli.eval import main as vf_eval

    server = make_scripted_server(handler=tool_user)
    server.fail_next("500", 1)
    out = tmp_path / "evals"
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed), contextlib.redirect_stdout(printed):
        code = vf_eval(["vf-toy-tools", "-m", "scripted", "-b", server.base_url, "-n", "4",
                        "-r", "2", "-s", "-o", str(out), "--max-retries", "0", "-c", "1",
                        "--max-failed-share", "0.2"])  # the one failed rollout is tolerated
    assert code == 0, printed.getvalue()
    (run,) = [p for p in out.glob("*/*") if p.is_dir()]
    return run, printed.getvalue()


@pytest.fixture
def tool_eval_run(tool_eval):
    return tool_eval[0]
