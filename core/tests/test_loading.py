"""Environment loading by id through the verifiers.environments entry points."""

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
