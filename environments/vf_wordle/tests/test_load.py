"""load_environment arguments and resolution through the entry point."""

from __future__ import annotations

from typing import Any

import pytest

import verifiers as vf
from vf_wordle import WordleEnv, load_environment
from vf_wordle.words import answer_words


def secrets(dataset: Any) -> list[str]:
    return [] if dataset is None else list(dataset["answer"])


def test_resolves_by_short_and_full_name() -> None:
    for name in ("wordle", "vf-wordle", "vf_wordle"):
        env = vf.load_environment(name, num_train_examples=10, num_eval_examples=2)
        assert isinstance(env, WordleEnv)
    assert (
        vf.load_environment("wordle", num_train_examples=1, num_eval_examples=1).env_id
        == "vf-wordle"
    )


def test_defaults() -> None:
    env = load_environment()
    assert len(env.dataset) == 2000 and len(env.eval_dataset) == 20
    assert env.max_guesses == 6
    assert env.parser.get_fields() == ["think", "guess"]
    row = env.eval_dataset[0]
    assert row["answer"] in answer_words()
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert "<think>" in row["prompt"][0]["content"] and "6 guesses" in row["prompt"][0]["content"]
    assert "6 guesses" in row["prompt"][1]["content"]


@pytest.mark.parametrize("use_think", [True, False])
def test_use_think(use_think: bool) -> None:
    env = load_environment(use_think=use_think, num_train_examples=5, num_eval_examples=5)
    assert env.parser.get_fields() == (["think", "guess"] if use_think else ["guess"])
    system = env.eval_dataset[0]["prompt"][0]["content"]
    assert ("<think>" in system) is use_think
    assert "<guess>\nWORD\n</guess>" in system
    assert env.parser.parse("<think>a</think><guess>crane</guess>").guess == "crane"


def test_splits_are_deterministic_and_disjoint() -> None:
    a = load_environment(num_train_examples=2000, num_eval_examples=200, seed=0)
    b = load_environment(num_train_examples=2000, num_eval_examples=200, seed=0)
    c = load_environment(num_train_examples=2000, num_eval_examples=200, seed=1)
    assert secrets(a.eval_dataset) == secrets(b.eval_dataset)
    assert secrets(a.dataset) == secrets(b.dataset)
    assert secrets(a.eval_dataset) != secrets(c.eval_dataset)
    assert not set(secrets(a.dataset)) & set(secrets(a.eval_dataset))
    assert len(set(secrets(a.eval_dataset))) == 200
    assert len(set(secrets(a.dataset))) == 2000


def test_all_and_repeated_training_words() -> None:
    env = load_environment(num_train_examples=-1, num_eval_examples=9)
    assert len(env.dataset) == 2300 and len(set(secrets(env.dataset))) == 2300
    env = load_environment(num_train_examples=5000, num_eval_examples=20)
    assert len(env.dataset) == 5000
    assert not set(secrets(env.dataset)) & set(secrets(env.eval_dataset))
    assert len(set(secrets(env.dataset))) == 2289


def test_empty_splits() -> None:
    env = load_environment(num_train_examples=0, num_eval_examples=3)
    assert env.dataset is None and len(env.get_eval_dataset()) == 3
    env = load_environment(num_train_examples=3, num_eval_examples=0)
    assert env.eval_dataset is None and len(env.get_eval_dataset()) == 3


def test_max_turns_and_system_prompt() -> None:
    env = load_environment(max_turns=4, num_train_examples=1, num_eval_examples=1)
    assert env.max_guesses == 4
    assert "4 guesses" in env.eval_dataset[0]["prompt"][0]["content"]
    env = load_environment(system_prompt="Play Wordle.", num_train_examples=1, num_eval_examples=1)
    assert env.eval_dataset[0]["prompt"][0] == {"role": "system", "content": "Play Wordle."}


def test_extra_environment_arguments() -> None:
    env = load_environment(
        num_train_examples=1, num_eval_examples=1, sampling_args={"temperature": 0.7}
    )
    assert env.sampling_args == {"temperature": 0.7}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_turns": 0}, "max_turns"),
        ({"num_eval_examples": 5000}, "num_eval_examples"),
        ({"num_train_examples": -2}, "num_train_examples"),
        ({"num_train_examples": 0, "num_eval_examples": 0}, "no games"),
        ({"num_eval_examples": 2309, "num_train_examples": 1}, "no secret is left"),
        ({"message_type": "completion"}, "chat"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_environment(**kwargs)


def test_unknown_argument_names_the_problem() -> None:
    with pytest.raises(TypeError, match="unexpected"):
        load_environment(num_train_examples=1, num_eval_examples=1, no_such_arg=1)
