"""Train and eval datasets: one row per game, ``question`` = the opening message,
``answer`` = the secret word."""

from __future__ import annotations

import random
from typing import Any

from vf_wordle.words import answer_words


def split_secrets(num_train: int, num_eval: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Disjoint secret words for training and evaluation, deterministic in ``seed``.

    The answer list is shuffled with ``random.Random(seed)``; eval takes the first
    ``num_eval`` words and training draws from the rest. ``num_train=-1`` takes every
    remaining word once; more than remain cycles through them again (each pass reshuffled),
    so secrets repeat but never leak into the eval set.
    """
    words = list(answer_words())
    if num_eval < 0 or num_eval > len(words):
        raise ValueError(
            f"num_eval_examples must be between 0 and {len(words)} (the number of answer "
            f"words), got {num_eval}."
        )
    if num_train < -1:
        raise ValueError(f"num_train_examples must be >= 0, or -1 for all; got {num_train}.")
    rng = random.Random(seed)
    rng.shuffle(words)
    eval_words, pool = words[:num_eval], words[num_eval:]
    if num_train == -1:
        return list(pool), eval_words
    if num_train > 0 and not pool:
        raise ValueError(
            f"num_eval_examples={num_eval} uses every answer word; no secret is left for "
            "training. Lower num_eval_examples or set num_train_examples=0."
        )
    train_words: list[str] = []
    while len(train_words) < num_train:
        batch = list(pool)
        if train_words:  # later passes: a fresh order
            rng.shuffle(batch)
        train_words.extend(batch[: num_train - len(train_words)])
    return train_words, eval_words


def make_rows(secrets: list[str], question: str) -> list[dict[str, Any]]:
    """Dataset rows for ``secrets``."""
    return [{"question": question, "answer": secret, "task": "wordle"} for secret in secrets]
