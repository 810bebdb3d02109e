"""Rubric values, from the game in the state and from a replay of the completion."""

from __future__ import annotations

import pytest

from vf_wordle.parsing import make_parser
from vf_wordle.rubric import WEIGHTS, make_rubric, replay_game


def completion(*replies: str) -> list[dict[str, str]]:
    out = []
    for reply in replies:
        out.append({"role": "assistant", "content": reply})
        out.append({"role": "user", "content": "feedback"})
    return out


def think(word: str) -> str:
    return f"<think>\nreasoning\n</think>\n<guess>\n{word}\n</guess>"


def score(comp: list[dict[str, str]], answer: str = "crane", use_think: bool = True) -> dict:
    parser = make_parser(use_think)
    rubric = make_rubric(parser)
    prompt = [{"role": "user", "content": "go"}]
    return rubric.score_rollout_sync(prompt, comp, answer, {})


def test_names_and_weights() -> None:
    rubric = make_rubric(make_parser(True))
    assert rubric.get_reward_func_names() == list(WEIGHTS)
    assert rubric.get_reward_weights() == list(WEIGHTS.values())
    assert WEIGHTS["correct_answer"] == 1.0
    assert all(w < 1.0 for name, w in WEIGHTS.items() if name != "correct_answer")


def test_win_in_two() -> None:
    s = score(completion(think("slate"), think("crane")))
    assert s["correct_answer"] == 1.0
    assert s["partial_credit"] == 1.0
    assert s["turns_bonus"] == pytest.approx(5 / 6)
    assert s["format_reward"] == 1.0
    assert (s["num_guesses"], s["invalid_guesses"]) == (2.0, 0.0)
    assert s["reward"] == pytest.approx(1.0 + 0.2 + 0.2 * 5 / 6 + 0.1)


def test_loss_partial_credit_from_last_valid_guess() -> None:
    # trace vs crane: X G G Y G -> 3 greens, 1 yellow; the invalid guesses after it don't count
    replies = [think("slate")] * 4 + [think("trace"), think("zzzzz")]
    s = score(completion(*replies))
    assert s["correct_answer"] == 0.0 and s["turns_bonus"] == 0.0
    assert s["partial_credit"] == pytest.approx(0.2 * 3 + 0.1)
    assert (s["num_guesses"], s["invalid_guesses"]) == (6.0, 1.0)
    assert s["reward"] == pytest.approx(0.2 * 0.7 + 0.1 * 1.0)


def test_no_valid_guess_and_bad_format() -> None:
    s = score(completion("crane", "I give up"))
    # verifiers 0.1.x's XML format score gives 0.2 (its spacing credit) to untagged text
    assert s["partial_credit"] == 0.0 and s["format_reward"] == pytest.approx(0.2)
    assert s["invalid_guesses"] == 2.0 and s["reward"] == pytest.approx(0.1 * 0.2)


def test_format_reward_without_think() -> None:
    s = score(completion("<guess>crane</guess>"), use_think=False)
    assert s["format_reward"] == 1.0 and s["correct_answer"] == 1.0
    s = score(completion("<guess>crane</guess>"), use_think=True)
    assert s["correct_answer"] == 1.0 and s["format_reward"] < 1.0


def test_guesses_after_the_end_are_ignored_in_replay() -> None:
    game = replay_game(completion(think("crane"), think("slate")), "crane", make_parser(True))
    assert game["won"] and len(game["guesses"]) == 1


def test_state_game_takes_precedence() -> None:
    parser = make_parser(True)
    rubric = make_rubric(parser)
    state = {"wordle": replay_game(completion(think("crane")), "crane", parser)}
    s = rubric.score_rollout_sync([], completion("nothing"), "crane", state)
    assert s["correct_answer"] == 1.0 and s["turns_bonus"] == 1.0
