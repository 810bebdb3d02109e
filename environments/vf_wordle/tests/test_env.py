"""The game loop: feedback text, invalid guesses cost a turn, the game ends on a win or after
the last guess, and nothing the model writes crashes it."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers.testing import ScriptedServer
from vf_wordle import WordleEnv, load_environment
from vf_wordle.feedback import render_feedback
from vf_wordle.game import new_game, play
from vf_wordle.prompts import opening_message
from vf_wordle.solver import parse_feedback
from vf_wordle.words import allowed_words


@cache
def env(use_think: bool = True, max_turns: int = 6) -> WordleEnv:
    return load_environment(
        use_think=use_think, num_train_examples=0, num_eval_examples=5, max_turns=max_turns
    )


def play_game(
    server: ScriptedServer, secret: str, use_think: bool = True, max_turns: int = 6
) -> dict[str, Any]:
    """One game against ``server``; returns the single rollout's fields."""
    e = env(use_think, max_turns)
    results = e.generate(
        inputs=[{"question": opening_message(max_turns), "answer": secret}],
        client=server.client(),
        model="scripted",
    )
    assert results["errors"] == [None], results["errors"]
    return {
        "completion": results["completions"][0],
        "state": results["states"][0],
        "reward": results["rewards"][0],
        "metrics": {k: v[0] for k, v in results["metrics"].items()},
    }


def guess(word: str) -> str:
    return f"<think>\nhmm\n</think>\n<guess>\n{word}\n</guess>"


def test_feedback_text_valid_guess() -> None:
    game = new_game("crane")
    record = play(game, "trace")
    assert render_feedback(game, record) == (
        "Guess 1/6: TRACE\nT R A C E\nX G G Y G\n5 guesses left."
    )


def test_feedback_text_win_loss_and_invalid() -> None:
    game = new_game("crane", max_guesses=2)
    text = render_feedback(game, play(game, "cranes"))
    assert text == (
        'Guess 1/2: invalid. "CRANES" has 6 letters; a guess must have exactly 5.\n'
        "An invalid guess still uses a turn. 1 guess left."
    )
    text = render_feedback(game, play(game, "slate"))
    assert text.endswith("X X G X G\nNo guesses left. The word was CRANE.")
    game = new_game("crane")
    text = render_feedback(game, play(game, "crane"))
    assert text.endswith("G G G G G\nCorrect! You found the word in 1 guess.")


def test_feedback_round_trips_through_solver_parser() -> None:
    game = new_game("abbey")
    text = render_feedback(game, play(game, "babes"))
    assert parse_feedback(text) == [("babes", "YYGGX")]
    assert parse_feedback(render_feedback(game, play(game, "xx"))) == []


def test_win_ends_the_game(make_scripted_server: Any) -> None:
    server = make_scripted_server(script=[guess("slate"), guess("crane"), guess("never")])
    game = play_game(server, "crane")
    assert len(server.requests) == 2
    wordle = game["state"]["wordle"]
    assert wordle["won"] and [g["word"] for g in wordle["guesses"]] == ["slate", "crane"]
    roles = [m["role"] for m in game["completion"]]
    assert roles == ["assistant", "user", "assistant", "user"]
    assert game["completion"][-1]["content"].endswith("Correct! You found the word in 2 guesses.")
    assert game["metrics"]["correct_answer"] == 1.0
    assert game["metrics"]["turns_bonus"] == pytest.approx(5 / 6)


def test_game_ends_after_six_guesses(make_scripted_server: Any) -> None:
    server = make_scripted_server(default_reply=guess("slate"))
    game = play_game(server, "crane")
    assert len(server.requests) == 6
    wordle = game["state"]["wordle"]
    assert len(wordle["guesses"]) == 6 and not wordle["won"]  # the rubric judged the 6th
    assert game["state"]["turn"] == 6
    feedback = [m["content"] for m in game["completion"] if m["role"] == "user"]
    assert len(feedback) == 5  # no environment answer after the last allowed turn
    assert feedback[0].startswith("Guess 1/6: SLATE") and feedback[0].endswith("5 guesses left.")
    assert feedback[-1].endswith("1 guess left.")
    assert game["completion"][-1] == {"role": "assistant", "content": guess("slate")}
    assert game["metrics"]["correct_answer"] == 0.0
    assert game["metrics"]["partial_credit"] == pytest.approx(0.4)  # XXGXG
    assert game["metrics"]["turns_bonus"] == 0.0


def test_win_on_last_guess_counts(make_scripted_server: Any) -> None:
    server = make_scripted_server(script=[guess("slate")] * 5 + [guess("crane")])
    game = play_game(server, "crane")
    assert game["state"]["wordle"]["won"] and len(server.requests) == 6
    assert game["metrics"]["turns_bonus"] == pytest.approx(1 / 6)


def test_invalid_guesses_cost_turns(make_scripted_server: Any) -> None:
    script = [guess("cranes"), "I think it is crane", guess("abcde"), guess("crane")]
    server = make_scripted_server(script=script)
    game = play_game(server, "crane")
    wordle = game["state"]["wordle"]
    assert [g["error"] is not None for g in wordle["guesses"]] == [True, True, True, False]
    feedback = [m["content"] for m in game["completion"] if m["role"] == "user"]
    assert "has 6 letters" in feedback[0] and "5 guesses left" in feedback[0]
    assert "<guess>WORD</guess>" in feedback[1] and "4 guesses left" in feedback[1]
    assert "not in the word list" in feedback[2] and "3 guesses left" in feedback[2]
    assert game["metrics"]["invalid_guesses"] == 3.0
    assert game["metrics"]["num_guesses"] == 4.0
    assert game["metrics"]["turns_bonus"] == pytest.approx(3 / 6)


def test_all_invalid_game_ends_and_scores_zero(make_scripted_server: Any) -> None:
    server = make_scripted_server(default_reply="no idea")
    game = play_game(server, "crane", max_turns=3)
    assert len(server.requests) == 3
    m = game["metrics"]
    assert (m["correct_answer"], m["partial_credit"], m["invalid_guesses"]) == (0.0, 0.0, 3.0)
    assert game["completion"][-1] == {"role": "assistant", "content": "no idea"}


def test_feedback_reaches_the_model(make_scripted_server: Any) -> None:
    server = make_scripted_server(script=[guess("slate"), guess("crane")])
    play_game(server, "crane")
    second = server.requests[1]["messages"]
    assert second[0]["role"] == "system" and "<guess>" in second[0]["content"]
    assert second[-1] == {
        "role": "user",
        "content": "Guess 1/6: SLATE\nS L A T E\nX X G X G\n5 guesses left.",
    }


def fresh_state(e: WordleEnv, secret: str = "crane") -> dict[str, Any]:
    state = e.init_state([{"role": "user", "content": "go"}], secret, "wordle", {})
    return e.setup_state(state)


contents = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda a, b, c: f"{a}<guess>{b}</guess>{c}",
        st.text(max_size=20),
        st.text(max_size=20),
        st.text(max_size=20),
    ),
    st.builds(
        lambda w: f"<think>x</think><guess>{w}</guess>", st.sampled_from(sorted(allowed_words()))
    ),
    st.builds(lambda w: f"<guess>{w}", st.text(max_size=10)),
    st.none(),
    st.just([{"type": "text", "text": "<guess>crane</guess>"}]),
)


@settings(max_examples=300, deadline=None)
@given(replies=st.lists(contents, min_size=1, max_size=8), use_think=st.booleans())
def test_env_response_never_crashes(replies: list[Any], use_think: bool) -> None:
    e = env(use_think)
    state = fresh_state(e)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for n, content in enumerate(replies, start=1):
        if e.is_completed(messages, state):
            break
        messages.append({"role": "assistant", "content": content})
        new, state = e.env_response(messages, state)
        assert len(new) == 1 and new[0]["role"] == "user" and isinstance(new[0]["content"], str)
        messages.extend(new)
        assert len(state["wordle"]["guesses"]) == n  # every reply uses a guess
        record = state["wordle"]["guesses"][-1]
        assert (record["error"] is None) == (record["marks"] is not None)
        if record["error"] is not None:
            assert new[0]["content"].startswith(f"Guess {n}/6: invalid.")
    assert len(state["wordle"]["guesses"]) <= 6
