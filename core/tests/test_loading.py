"""Environment loading by id through the verifiers.environments entry points."""

import sys

import pytest

import verifiers as vf
from verifiers.loading import EnvironmentNotFoundError, resolve_environment_id


def test_load_by_full_short_and_module_id(installed_envs):
    env = vf.load_environment("vf-toy-math", num_examples=5)
    assert len(env.get_dataset()) == 5
    assert env.env_id == "vf-toy-math"
    assert resolve_environment_id("toy-math") == "vf-toy-math"
    assert resolve_environment_id("vf_toy_game") == "vf-toy-game"
    assert resolve_environment_id("TOY_GAME") == "vf-toy-game"
    assert {"vf-toy-math", "vf-toy-game"} <= set(vf.list_environments())


def test_unknown_id_lists_installed_and_suggests(installed_envs):
    with pytest.raises(EnvironmentNotFoundError) as info:
        vf.load_environment("vf-toy-maht")
    message = str(info.value)
    assert "Unknown environment 'vf-toy-maht'" in message
    assert "vf-toy-game" in message and "vf-toy-math" in message
    assert "Did you mean 'vf-toy-math'?" in message


def test_unknown_argument_lists_accepted_ones(installed_envs):
    with pytest.raises(TypeError, match="does not take 'num_exmples'. Its arguments: num_examples, greeting"):
        vf.load_environment("toy-math", num_exmples=2)


def test_broken_environment_module_says_so(installed_envs):
    (installed_envs / "vf_toy_game.py").write_text("raise RuntimeError('missing dependency foo')\n")
    with pytest.raises(ImportError, match="failed to import .*missing dependency foo"):
        vf.load_environment("vf-toy-game")


def _module(tmp_path, name, body):
    (tmp_path / f"{name}.py").write_text(body)


LEGACY = '''
import verifiers as vf

def load_environment(num_examples: int = 2):
    return vf.SingleTurnEnv(dataset=[{"question": str(i), "answer": str(i)} for i in range(num_examples)])
'''


def test_module_named_after_the_id_loads_without_an_entry_point(tmp_path, monkeypatch):
    """verifiers 0.1.x packages have no entry point: the id names the module."""
    _module(tmp_path, "legacy_math_env", LEGACY)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert len(vf.load_environment("legacy-math-env", num_examples=3).get_dataset()) == 3
        assert len(vf.load_environment("someone/legacy-math-env").get_dataset()) == 2
        with pytest.raises(TypeError, match="does not take 'num_exmples'"):
            vf.load_environment("legacy-math-env", num_exmples=1)
    finally:
        sys.modules.pop("legacy_math_env", None)


def test_entry_points_win_over_modules(installed_envs):
    _module(installed_envs, "toy_math", "def load_environment():\n    raise AssertionError('module used')\n")
    try:
        assert vf.load_environment("toy-math").env_id == "vf-toy-math"
    finally:
        sys.modules.pop("toy_math", None)


def test_not_found_error_names_both_searches(installed_envs, tmp_path):
    with pytest.raises(EnvironmentNotFoundError) as info:
        vf.load_environment("owner/no-such-env")
    message = str(info.value)
    assert "'verifiers.environments' entry points" in message
    assert "module named 'no_such_env'" in message and "Installed: " in message
    _module(installed_envs, "not_an_env", "x = 1\n")
    try:
        with pytest.raises(EnvironmentNotFoundError, match="has no load_environment function"):
            vf.load_environment("not-an-env")
    finally:
        sys.modules.pop("not_an_env", None)
