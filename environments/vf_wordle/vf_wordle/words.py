"""The Wordle word lists shipped with the package (see ``data/PROVENANCE.md``)."""

from __future__ import annotations

from functools import cache
from importlib import resources

WORD_LENGTH = 5


def _read_words(filename: str) -> tuple[str, ...]:
    text = resources.files("vf_wordle").joinpath("data", filename).read_text(encoding="utf-8")
    words = tuple(word.strip().lower() for word in text.split() if word.strip())
    bad = [w for w in words if len(w) != WORD_LENGTH or not w.isascii() or not w.isalpha()]
    if bad:
        raise ValueError(
            f"vf_wordle/data/{filename} holds entries that are not {WORD_LENGTH}-letter words "
            f"(e.g. {bad[:3]}); restore the file from the package sources."
        )
    return words


@cache
def answer_words() -> tuple[str, ...]:
    """The 2,309 original Wordle solutions, in the file's (alphabetical) order."""
    return _read_words("answers.txt")


@cache
def allowed_words() -> frozenset[str]:
    """Every word accepted as a guess (14,855 words, a superset of the answers)."""
    return frozenset(_read_words("allowed_guesses.txt")) | frozenset(answer_words())
