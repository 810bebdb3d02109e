"""Reward functions of the Wordle rubric, each reported as its own metric.

They read the game from ``state["wordle"]`` (written by :class:`~vf_wordle.env.WordleEnv`),
after playing the guesses the environment did not answer: the episode ends right after the
last allowed model turn (verifiers 0.1.x's ``max_turns``), so the final guess is judged here.
When a state has no game (scoring saved completions with the rubric alone) the game is
replayed from the completion's assistant messages and the answer.
"""

from __future__ import annotations

from typing import Any

import verifiers as vf
from verifiers.parsers.parser import message_text
from verifiers.types import Messages, State
from vf_wordle.game import (
    GREEN,
    YELLOW,
    GameRecord,
    is_over,
    last_valid_guess,
    new_game,
    play,
)
from vf_wordle.parsing import read_guess

#: Default weights: winning dominates; the shaping terms stay below it.
WEIGHTS = {
    "correct_answer": 1.0,
    "partial_credit": 0.2,
    "turns_bonus": 0.2,
    "format_reward": 0.1,
    "num_guesses": 0.0,
    "invalid_guesses": 0.0,
}


def _guesses(completion: Messages) -> list[Any]:
    """The completion's assistant messages: one guess each."""
    if isinstance(completion, str):
        return [{"role": "assistant", "content": completion}]
    return [m for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]


def play_unanswered(game: GameRecord, completion: Messages, parser: Any) -> GameRecord:
    """Play, in place, the completion's guesses the game has not seen yet (the final guess,
    which the environment does not answer). Playing again changes nothing."""
    for message in _guesses(completion)[len(game["guesses"]):]:
        if is_over(game):
            break
        play(game, read_guess(parser, message_text(message)))
    return game


def replay_game(completion: Messages, answer: str, parser: Any, max_guesses: int = 6) -> GameRecord:
    """The game a completion played: each assistant message is one guess."""
    return play_unanswered(new_game(answer, max_guesses), completion, parser)


def game_of(
    state: State | None, completion: Messages, answer: str, parser: Any, max_guesses: int = 6
) -> GameRecord:
    """The rollout's game, final guess included: ``state["wordle"]`` (completed in place),
    or a replay when the state lacks it."""
    game = (state or {}).get("wordle")
    if game is not None:
        return play_unanswered(game, completion, parser)
    return replay_game(completion, answer, parser, max_guesses)


def correct_answer(
    state: State, completion: Messages, answer: str, parser: Any, max_guesses: int = 6
) -> float:
    """1.0 when the secret word was found within the allowed guesses."""
    return 1.0 if game_of(state, completion, answer, parser, max_guesses)["won"] else 0.0


def partial_credit(
    state: State, completion: Messages, answer: str, parser: Any, max_guesses: int = 6
) -> float:
    """0.2 per green + 0.1 per yellow in the last valid guess (1.0 for a win, 0.0 when no
    guess was valid)."""
    record = last_valid_guess(game_of(state, completion, answer, parser, max_guesses))
    if record is None or record["marks"] is None:
        return 0.0
    marks = record["marks"]
    return min(1.0, 0.2 * marks.count(GREEN) + 0.1 * marks.count(YELLOW))


def turns_bonus(
    state: State, completion: Messages, answer: str, parser: Any, max_guesses: int = 6
) -> float:
    """On a win with ``n`` of ``m`` guesses: ``(m + 1 - n) / m`` (1.0 for a first-guess win,
    ``1/m`` for a win on the last guess); 0.0 otherwise."""
    game = game_of(state, completion, answer, parser, max_guesses)
    if not game["won"]:
        return 0.0
    m = game["max_guesses"]
    return (m + 1 - len(game["guesses"])) / m


def num_guesses(
    state: State, completion: Messages, answer: str, parser: Any, max_guesses: int = 6
) -> float:
    """Guesses used, valid or not (a metric; weight 0)."""
    return float(len(game_of(state, completion, answer, parser, max_guesses)["guesses"]))


def invalid_guesses(
    state: State, completion: Messages, answer: str, parser: Any, max_guesses: int = 6
) -> float:
    """Invalid guesses (no tag, wrong length, not a word) in the game (a metric; weight 0)."""
    game = game_of(state, completion, answer, parser, max_guesses)
    return float(sum(1 for g in game["guesses"] if g["error"] is not None))


def make_rubric(parser: vf.XMLParser, max_guesses: int = 6) -> vf.Rubric:
    """The Wordle rubric: ``correct_answer`` (1.0), ``partial_credit`` (0.2),
    ``turns_bonus`` (0.2), the parser's ``format_reward`` (0.1), and the metrics
    ``num_guesses`` and ``invalid_guesses`` (weight 0)."""
    funcs = [
        correct_answer,
        partial_credit,
        turns_bonus,
        parser.get_format_reward_func(),
        num_guesses,
        invalid_guesses,
    ]
    return vf.Rubric(
        funcs=funcs, weights=list(WEIGHTS.values()), parser=parser, max_guesses=max_guesses
    )
