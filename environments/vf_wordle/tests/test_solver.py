"""The reference solver wins through the environment's own loop (scripted server)."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from vf_wordle import load_environment
from vf_wordle.solver import default_solver, make_solver_handler


def test_solver_wins_200_games(make_scripted_server: Any) -> None:
    default_solver()  # build the pattern matrix outside the timed part
    env = load_environment(num_train_examples=0, num_eval_examples=200)
    server = make_scripted_server(handler=make_solver_handler())
    start = time.perf_counter()
    results = env.evaluate(server.client(), "scripted", num_examples=200)
    elapsed = time.perf_counter() - start
    assert server.handler_errors == []
    assert results["errors"] == [None] * 200
    wins = results["metrics"]["correct_answer"]
    guesses = [n for n, w in zip(results["metrics"]["num_guesses"], wins, strict=True) if w]
    win_rate = sum(wins) / len(wins)
    print(
        f"solver: win rate {win_rate:.3f}, mean guesses {statistics.mean(guesses):.3f}, "
        f"{elapsed:.1f} s for 200 games"
    )
    assert win_rate >= 0.95
    assert statistics.mean(guesses) < 4.0
    assert results["metrics"]["format_reward"] == [1.0] * 200
    assert results["metrics"]["invalid_guesses"] == [0.0] * 200
    # no time limit here: 37 s on a loaded 2-core machine; speed belongs in benchmarks/


@pytest.mark.parametrize("use_think", [True, False])
def test_solver_follows_the_reply_format(make_scripted_server: Any, use_think: bool) -> None:
    env = load_environment(use_think=use_think, num_train_examples=0, num_eval_examples=3)
    server = make_scripted_server(handler=make_solver_handler())
    results = env.evaluate(server.client(), "scripted")
    assert results["metrics"]["correct_answer"] == [1.0] * 3
    assert results["metrics"]["format_reward"] == [1.0] * 3
    first = results["completions"][0][0]["content"]
    assert first.startswith("<think>") is use_think
    assert first.endswith("<guess>\nsalet\n</guess>")


def test_solver_detects_wrong_feedback() -> None:
    """Contradictory feedback leaves no candidate; the solver says so instead of guessing."""
    handler = make_solver_handler()
    request = {
        "messages": [
            {"role": "user", "content": "Guess 1/6: CRANE\nC R A N E\nG G G G X\n5 guesses left."},
            {"role": "user", "content": "Guess 2/6: CRANK\nC R A N K\nG G G G X\n4 guesses left."},
            {"role": "user", "content": "Guess 3/6: CRANS\nC R A N S\nX X X X X\n3 guesses left."},
        ]
    }
    with pytest.raises(ValueError, match="No answer word"):
        handler(request)
