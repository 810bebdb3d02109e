"""vf-wordle: the game of Wordle as a multi-turn environment.

    env = vf.load_environment("wordle", use_think=True, num_train_examples=2000)

The model gets six guesses (``max_turns``) to find a secret word from the 2,309 original
Wordle answers; guesses must be in the allowed list. See the package README for the
feedback format and the rubric.
"""

from __future__ import annotations

import inspect
from typing import Any

import verifiers as vf
from vf_wordle.dataset import make_rows, split_secrets
from vf_wordle.env import WordleEnv
from vf_wordle.parsing import make_parser, reply_format
from vf_wordle.prompts import opening_message
from vf_wordle.prompts import system_prompt as default_system_prompt
from vf_wordle.rubric import make_rubric

__all__ = ["WordleEnv", "load_environment"]


def load_environment(
    use_think: bool = True,
    num_train_examples: int = 2000,
    num_eval_examples: int = 20,
    seed: int = 0,
    max_turns: int = 6,
    system_prompt: str | None = None,
    **kwargs: Any,
) -> WordleEnv:
    """Build the Wordle environment.

    Args:
        use_think: replies are ``<think>...</think>`` then ``<guess>WORD</guess>`` (True)
            or just ``<guess>WORD</guess>`` (False).
        num_train_examples: training games (secret words; -1: every word not in eval,
            more than that repeats words); 0 for no training set.
        num_eval_examples: evaluation games, secrets disjoint from training; 0 for none.
        seed: which answer words go to train and eval (deterministic).
        max_turns: guesses per game (Wordle's 6).
        system_prompt: replaces the default prompt (rules, feedback legend, format).
        **kwargs: passed on to the environment (``sampling_args``, ``max_concurrent``,
            ``rollout_timeout``, ...).
    """
    if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
        raise ValueError(f"max_turns is the number of guesses and must be >= 1, got {max_turns!r}.")
    known = set(inspect.signature(vf.Environment.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"load_environment got unexpected arguments {unknown}. It takes use_think, "
            "num_train_examples, num_eval_examples, seed, max_turns, system_prompt, and the "
            f"environment's arguments: {', '.join(sorted(known))}."
        )
    if num_train_examples == 0 and num_eval_examples == 0:
        raise ValueError("num_train_examples and num_eval_examples are both 0: no games to play.")
    parser = make_parser(use_think)
    train_words, eval_words = split_secrets(num_train_examples, num_eval_examples, seed)
    question = opening_message(max_turns)
    if system_prompt is None:
        system_prompt = default_system_prompt(max_turns, reply_format(parser), use_think)
    return WordleEnv(
        max_guesses=max_turns,
        dataset=make_rows(train_words, question) if train_words else None,
        eval_dataset=make_rows(eval_words, question) if eval_words else None,
        system_prompt=system_prompt,
        parser=parser,
        rubric=make_rubric(parser, max_turns),
        **kwargs,
    )
