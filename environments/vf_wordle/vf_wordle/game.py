"""The rules of Wordle: scoring a guess, validating it, and the record of one game.

A game is a plain, JSON-serializable dict (:class:`GameRecord`) kept in the rollout state
under ``state["wordle"]``, so saved results carry the whole game.

Marks are one character per letter: ``G`` (green: right letter, right spot), ``Y``
(yellow: the letter is in the word elsewhere) and ``X`` (gray: not in the word, or not as
many times as it was guessed).
"""

from __future__ import annotations

from collections import Counter
from typing import TypedDict

from vf_wordle.words import WORD_LENGTH, allowed_words

GREEN, YELLOW, GRAY = "G", "Y", "X"
ALL_GREEN = GREEN * WORD_LENGTH
_STRIP_CHARS = " \t\r\n\"'`*_.,;:!?()[]{}<>«»“”‘’"
_SHOWN_MAX = 30


class GuessRecord(TypedDict):
    """One turn of the game: what was guessed and how it was judged."""

    guess: str | None  # the guess as written (shortened), None when no <guess> tag was found
    word: str | None  # the normalized valid word, None when the guess was invalid
    marks: str | None  # e.g. "GYXXG" for a valid guess
    error: str | None  # why the guess was invalid


class GameRecord(TypedDict):
    """One game of Wordle."""

    secret: str
    max_guesses: int
    guesses: list[GuessRecord]
    won: bool


def score_guess(guess: str, secret: str) -> str:
    """The marks for ``guess`` against ``secret`` (both lowercase, same length).

    Greens are given first; then, left to right, a letter is yellow while the secret still
    has unmatched copies of it (copies not already used by a green or an earlier yellow),
    and gray otherwise. ``score_guess("babes", "abbey") == "YYGGX"``.
    """
    if len(guess) != len(secret):
        raise ValueError(f"guess {guess!r} and secret {secret!r} differ in length.")
    marks = [GRAY] * len(guess)
    unmatched: Counter[str] = Counter()
    for i, (g, s) in enumerate(zip(guess, secret, strict=True)):
        if g == s:
            marks[i] = GREEN
        else:
            unmatched[s] += 1
    for i, g in enumerate(guess):
        if marks[i] != GREEN and unmatched[g] > 0:
            marks[i] = YELLOW
            unmatched[g] -= 1
    return "".join(marks)


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "…"


def check_guess(text: str | None, secret: str) -> tuple[str | None, str | None]:
    """Validate the content of a ``<guess>`` tag: ``(word, None)`` or ``(None, error)``.

    Case, surrounding whitespace, quotes, brackets and trailing punctuation are ignored
    (``"**Crane.**"`` reads as ``crane``). The word must be 5 letters a-z and in the
    allowed list (the secret itself is always allowed).
    """
    if text is None:
        return None, "no guess found. Write your guess inside tags: <guess>WORD</guess>."
    word = text.strip(_STRIP_CHARS).lower()
    if not word:
        return None, "the <guess> tag is empty. Write one 5-letter word inside it."
    if not (word.isascii() and word.isalpha()):
        return None, f'"{_shown(text)}" is not a single word of letters a-z.'
    if len(word) != WORD_LENGTH:
        return None, (
            f'"{_shown(word.upper())}" has {len(word)} letters; '
            f"a guess must have exactly {WORD_LENGTH}."
        )
    if word != secret and word not in allowed_words():
        return None, (
            f'"{word.upper()}" is not in the word list. Guess a real {WORD_LENGTH}-letter '
            "English word."
        )
    return word, None


def new_game(secret: str, max_guesses: int = 6) -> GameRecord:
    """A fresh game for ``secret`` (any 5 letters a-z; case is ignored)."""
    word = str(secret).strip().lower()
    if len(word) != WORD_LENGTH or not (word.isascii() and word.isalpha()):
        raise ValueError(
            f"The secret word must be {WORD_LENGTH} letters a-z, got {secret!r}; "
            "check the dataset's 'answer' column."
        )
    if max_guesses < 1:
        raise ValueError(f"max_guesses must be at least 1, got {max_guesses}.")
    return {"secret": word, "max_guesses": int(max_guesses), "guesses": [], "won": False}


def is_over(game: GameRecord) -> bool:
    """Won, or out of guesses."""
    return game["won"] or len(game["guesses"]) >= game["max_guesses"]


def guesses_left(game: GameRecord) -> int:
    return max(game["max_guesses"] - len(game["guesses"]), 0)


def play(game: GameRecord, guess_text: str | None) -> GuessRecord:
    """Play one turn with the content of the model's ``<guess>`` tag (``None``: no tag).

    Every call uses up a guess, valid or not; the record is appended to ``game``.
    """
    if is_over(game):
        raise RuntimeError("The game is over; no more guesses can be played.")
    word, error = check_guess(guess_text, game["secret"])
    record: GuessRecord = {
        "guess": None if guess_text is None else _shown(guess_text),
        "word": word,
        "marks": None if word is None else score_guess(word, game["secret"]),
        "error": error,
    }
    game["guesses"].append(record)
    if record["marks"] == ALL_GREEN:
        game["won"] = True
    return record


def last_valid_guess(game: GameRecord) -> GuessRecord | None:
    """The most recent valid guess, if any."""
    for record in reversed(game["guesses"]):
        if record["marks"] is not None:
            return record
    return None
