"""TextArenaEnv: a TextArena game (Wordle by default) as a multi-turn environment.

Needs the optional ``textarena`` and ``nltk`` packages (``pip install textarena nltk``);
they are imported when an environment is built, so this module imports without them.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

from verifiers.envs.multi_turn_env import MultiTurnEnv
from verifiers.parsers.parser import Parser
from verifiers.rubrics.rubric import Rubric
from verifiers.types import Messages, State

INSTALL_HINT = "TextArenaEnv needs the textarena and nltk packages: pip install textarena nltk"


def import_textarena() -> Any:
    """The ``textarena`` module (with nltk's word lists fetched quietly), or an
    ``ImportError`` that names the install command."""
    try:
        import nltk  # type: ignore[import-not-found]
        import textarena  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc}).") from exc
    for corpus in ("words", "averaged_perceptron_tagger_eng"):
        nltk.download(corpus, quiet=True)
    return textarena


class TextArenaEnv(MultiTurnEnv):
    """Plays the one-player TextArena game ``game``: each row's ``answer`` is the secret
    word; each model turn is parsed (``parser.parse_answer``, by default the ``<guess>``
    field of an ``XMLParser(["think", "guess"])``) and played, and the game's observation,
    passed through ``feedback_fn``, is the environment's reply. ``num_train_examples`` /
    ``num_eval_examples`` secrets are drawn from the game's word list with ``seed``."""

    def __init__(
        self,
        game: str = "Wordle-v0",
        num_train_examples: int = 1000,
        num_eval_examples: int = 0,
        system_prompt: str | None = None,
        parser: Parser | None = None,
        rubric: Rubric | None = None,
        feedback_fn: Callable[[str], str] = lambda text: text,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        ta = import_textarena()
        if parser is None:
            from verifiers.parsers.xml_parser import XMLParser

            parser = XMLParser(fields=["think", "guess"], answer_field="guess")
        self.game = game
        self.ta_env = ta.make(env_id=game)
        self.num_train_examples = num_train_examples
        self.num_eval_examples = num_eval_examples
        self.feedback_fn = feedback_fn
        self.seed = seed
        dataset, eval_dataset = self._games(ta)
        super().__init__(dataset=dataset, eval_dataset=eval_dataset,
                         system_prompt=system_prompt, parser=parser, rubric=rubric,
                         message_type="chat", **kwargs)

    def _games(self, ta: Any) -> tuple[list[dict[str, str]] | None, list[dict[str, str]] | None]:
        probe = ta.make(env_id=self.game)
        probe.reset(num_players=1)
        _, question = probe.get_observation()
        rng = random.Random(self.seed)
        words = list(probe.word_list)
        secrets = [rng.choice(words) for _ in range(self.num_train_examples + self.num_eval_examples)]
        rows = [{"question": question, "answer": word} for word in secrets]
        train, held_out = rows[: self.num_train_examples], rows[self.num_train_examples:]
        return (train or None), (held_out or None)

    def is_completed(self, messages: Messages, state: State, **kwargs: Any) -> bool:
        if state.get("is_finished"):
            state.pop("ta_env", None)  # the game object is not kept in results
            return True
        return False

    def env_response(self, messages: Messages, state: State, **kwargs: Any) -> tuple[Messages, State]:
        game = state.get("ta_env")
        if game is None:
            game = copy.deepcopy(self.ta_env)
            game.reset(num_players=1)
            game.state.game_state["secret_word"] = state["answer"]
            state["ta_env"] = game
        guess = self.parser.parse_answer(messages)
        finished, _ = game.step(str(guess))
        state["is_finished"] = finished
        _, observation = game.get_observation()
        return [{"role": "user", "content": str(self.feedback_fn(observation))}], state

    def cleanup_state(self, state: State) -> None:
        state.pop("ta_env", None)
