"""The rules: scoring with repeated letters, guess validation, the game record."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vf_wordle.game import check_guess, is_over, new_game, play, score_guess
from vf_wordle.solver import marks_code, pattern_matrix
from vf_wordle.words import allowed_words, answer_words

# (secret, guess, marks), worked out by hand with the standard rules: greens first, then
# yellows left to right while the secret has unmatched copies of the letter.
CASES = [
    ("abbey", "babes", "YYGGX"),  # b yellow once (the other b is green), a yellow, s gray
    ("llama", "hello", "XXYYX"),  # two l's in the secret: both guessed l's are yellow
    ("abbey", "bobby", "YXGXG"),  # three b's guessed, two in the secret: one G, one Y, one X
    ("crane", "eerie", "XXYXG"),  # the final e is green, so the earlier e's are gray
    ("elder", "eerie", "GYYXX"),  # first e green, second e yellow, third e gray
    ("speed", "erase", "YXXYY"),  # two e's in the secret, two guessed, none in place
    ("those", "geese", "XXXGG"),  # the one e is used by the green: other e's gray
    ("sassy", "assay", "YYGXG"),  # second a gray: the secret has one a
    ("mamma", "maxim", "GGXXY"),  # trailing m yellow: secret has m's left after greens
    ("crane", "crane", "GGGGG"),
    ("crane", "fjord", "XXXYX"),
]


@pytest.mark.parametrize(("secret", "guess", "marks"), CASES)
def test_score_guess_repeated_letters(secret: str, guess: str, marks: str) -> None:
    assert score_guess(guess, secret) == marks


@pytest.mark.parametrize(("secret", "guess", "marks"), CASES)
def test_solver_matrix_agrees_on_cases(secret: str, guess: str, marks: str) -> None:
    assert pattern_matrix([guess], [secret])[0, 0] == marks_code(marks)


words = st.sampled_from(sorted(allowed_words()))
secrets = st.sampled_from(answer_words())


@settings(max_examples=300, deadline=None)
@given(guess=words, secret=secrets)
def test_score_guess_invariants(guess: str, secret: str) -> None:
    marks = score_guess(guess, secret)
    assert len(marks) == 5 and set(marks) <= {"G", "Y", "X"}
    for i, m in enumerate(marks):
        assert (m == "G") == (guess[i] == secret[i])
    # each letter is marked G or Y exactly min(copies guessed, copies in secret) times
    marked = Counter(g for g, m in zip(guess, marks, strict=True) if m != "X")
    for letter in set(guess):
        assert marked[letter] == min(guess.count(letter), secret.count(letter))
    # yellows of a letter come before its grays (left to right)
    for letter in set(guess):
        seq = [m for g, m in zip(guess, marks, strict=True) if g == letter and m != "G"]
        assert seq == sorted(seq, key=lambda m: m == "X")
    assert pattern_matrix([guess], [secret])[0, 0] == marks_code(marks)


def test_word_lists() -> None:
    assert len(answer_words()) == 2309
    assert len(allowed_words()) == 14855
    assert set(answer_words()) <= allowed_words()


@pytest.mark.parametrize(
    ("text", "word", "error_part"),
    [
        ("crane", "crane", None),
        ("  CRANE ", "crane", None),
        ("**Crane.**", "crane", None),
        ('"slate"', "slate", None),
        (None, None, "<guess>WORD</guess>"),
        ("", None, "empty"),
        ("cranes", None, "has 6 letters"),
        ("cat", None, "has 3 letters"),
        ("abcde", None, "not in the word list"),
        ("cr4ne", None, "letters a-z"),
        ("two words", None, "letters a-z"),
        ("crâne", None, "letters a-z"),
    ],
)
def test_check_guess(text: str | None, word: str | None, error_part: str | None) -> None:
    got_word, error = check_guess(text, "crane")
    assert got_word == word
    if error_part is None:
        assert error is None
    else:
        assert error is not None and error_part in error


def test_secret_outside_the_lists_is_guessable() -> None:
    assert check_guess("zzzzq", "zzzzq") == ("zzzzq", None)


def test_game_record_and_end() -> None:
    game = new_game("Crane", max_guesses=3)
    assert game["secret"] == "crane"
    first = play(game, "cranes")
    assert first["marks"] is None and first["error"] and not is_over(game)
    second = play(game, "trace")
    assert second == {"guess": "trace", "word": "trace", "marks": "XGGYG", "error": None}
    play(game, None)
    assert is_over(game) and not game["won"] and len(game["guesses"]) == 3
    with pytest.raises(RuntimeError, match="game is over"):
        play(game, "crane")


def test_game_won() -> None:
    game = new_game("crane")
    play(game, "crane")
    assert game["won"] and is_over(game)


@pytest.mark.parametrize("secret", ["", "cranes", "cr4ne", None])
def test_bad_secret_is_a_clear_error(secret: str | None) -> None:
    with pytest.raises(ValueError, match="answer"):
        new_game(secret)  # type: ignore[arg-type]
