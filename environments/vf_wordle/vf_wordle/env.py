"""WordleEnv: the game played as a multi-turn conversation."""

from __future__ import annotations

from typing import Any

import verifiers as vf
from verifiers.parsers.parser import message_text
from verifiers.types import Messages, State
from vf_wordle.feedback import render_feedback
from vf_wordle.game import is_over, new_game, play
from vf_wordle.parsing import make_parser, read_guess


class WordleEnv(vf.MultiTurnEnv):
    """Wordle: the secret is the row's ``answer``; each model turn is one guess.

    ``setup_state`` starts a game in ``state["wordle"]`` (a :class:`~vf_wordle.game.
    GameRecord`); ``env_response`` reads the guess from the last assistant message, plays it
    (valid or not, it uses a guess) and answers with the feedback as a user message;
    ``is_completed`` is true once the word is found or ``max_guesses`` are used.

    ``max_turns`` is ``max_guesses``. As in verifiers 0.1.x the environment does not answer
    the last allowed turn, so the final guess is judged by the rubric
    (:func:`vf_wordle.rubric.game_of` plays it into ``state["wordle"]``).
    """

    def __init__(
        self,
        max_guesses: int = 6,
        parser: vf.Parser | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(max_guesses, int) or max_guesses < 1:
            raise ValueError(
                f"max_guesses (max_turns) must be an integer >= 1, got {max_guesses!r}."
            )
        if kwargs.get("message_type", "chat") != "chat":
            raise ValueError("WordleEnv is a chat environment; message_type must be 'chat'.")
        super().__init__(max_turns=max_guesses, parser=parser or make_parser(True), **kwargs)
        self.max_guesses = max_guesses

    def setup_state(self, state: State, **kwargs: Any) -> State:
        state["wordle"] = new_game(state["answer"], self.max_guesses)
        return state

    def is_completed(self, messages: Messages, state: State, **kwargs: Any) -> bool:
        return is_over(state["wordle"])

    def env_response(
        self, messages: Messages, state: State, **kwargs: Any
    ) -> tuple[Messages, State]:
        game = state["wordle"]
        text = ""
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "assistant":
                text = message_text(message)
                break
        record = play(game, read_guess(self.parser, text))
        return [{"role": "user", "content": render_feedback(game, record)}], state
