"""Fixtures for the core's tests."""

import sys
import textwrap

import pytest

from verifiers.testing import Reply, ToolCall


def _register_env(folder, dist: str, module: str, source: str) -> None:
    """Write module ``module`` (``source``) into ``folder`` with a dist-info folder naming
    its ``load_environment`` as the entry point of environment ``dist`` (what pip writes)."""
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{module}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        f"[verifiers.environments]\n{dist} = {module}:load_environment\n")


@pytest.fixture
def register_env():
    """``register_env(folder, dist, module, source)``: an environment package on disk,
    registered through a real entry point (put ``folder`` on sys.path to use it)."""
    return _register_env


@pytest.fixture
def installed_envs(tmp_path, monkeypatch):
    """Two environment 'distributions' on sys.path, registered through real entry points
    (a dist-info folder, exactly what pip writes), without touching the venv."""
    for dist, module in (("vf-toy-math", "vf_toy_math"), ("vf-toy-game", "vf_toy_game")):
        _register_env(tmp_path, dist, module, textwrap.dedent('''
            import verifiers as vf

            def load_environment(num_examples: int = 3, greeting: str = "hi"):
                rows = [{"question": f"{greeting} {i}", "answer": str(i)} for i in range(num_examples)]
                return vf.SingleTurnEnv(dataset=rows)
        '''))
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
    _register_env(site, "vf-toy-tools", "vf_toy_tools", TOOL_ENV.format(words=WORDS))
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
