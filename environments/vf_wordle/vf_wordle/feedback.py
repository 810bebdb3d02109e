"""The feedback text the model reads after each guess.

A valid guess::

    Guess 2/6: CRANE
    C R A N E
    G Y X X X
    4 guesses left.

The letters line and the marks line are aligned, one mark under each letter: ``G`` green
(right letter, right spot), ``Y`` yellow (in the word, another spot), ``X`` gray (not in
the word, or not that many times). The last line is ``N guesses left.``, or
``Correct! You found the word in N guesses.`` on a win, or
``No guesses left. The word was WORD.`` when the last guess missed.

An invalid guess::

    Guess 2/6: invalid. "CRANES" has 6 letters; a guess must have exactly 5.
    An invalid guess still uses a turn. 4 guesses left.
"""

from __future__ import annotations

from vf_wordle.game import GameRecord, GuessRecord, guesses_left

LEGEND = (
    "G = right letter in the right spot, "
    "Y = the letter is in the word but in another spot, "
    "X = the letter is not in the word (or not as many times as you used it)"
)


def _left(n: int) -> str:
    return f"{n} guess left." if n == 1 else f"{n} guesses left."


def _outcome(game: GameRecord) -> str:
    used = len(game["guesses"])
    if game["won"]:
        return f"Correct! You found the word in {used} {'guess' if used == 1 else 'guesses'}."
    left = guesses_left(game)
    if left == 0:
        return f"No guesses left. The word was {game['secret'].upper()}."
    return _left(left)


def render_feedback(game: GameRecord, record: GuessRecord) -> str:
    """The feedback message for ``record``, the latest guess of ``game``."""
    number, total = len(game["guesses"]), game["max_guesses"]
    if record["word"] is None or record["marks"] is None:
        tail = _outcome(game)
        if not game["won"] and guesses_left(game) > 0:
            tail = f"An invalid guess still uses a turn. {tail}"
        return f"Guess {number}/{total}: invalid. {_capitalize(record['error'] or '')}\n{tail}"
    word = record["word"].upper()
    return "\n".join(
        [
            f"Guess {number}/{total}: {word}",
            " ".join(word),
            " ".join(record["marks"]),
            _outcome(game),
        ]
    )


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
