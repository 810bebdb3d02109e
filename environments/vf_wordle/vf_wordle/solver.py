"""A reference solver that plays through the environment's own loop.

It is meant as the ``handler`` of :class:`verifiers.testing.ScriptedServer`: it reads the
conversation the environment produced, rebuilds the constraints *only from the feedback
text* (``Guess n/m: WORD`` / letters / marks lines), and answers in the environment's reply
format. Winning nearly every game therefore checks the rules, the feedback text and the
loop end to end::

    server = ScriptedServer(handler=make_solver_handler()).start()
    results = env.evaluate(server.client(), "scripted", num_examples=200)

Strategy: a fixed opener (``salet``), then entropy-greedy: among the answer words (plus the
opener), pick the guess whose feedback splits the words still consistent with all feedback
into the most informative partition; ties go to words that could themselves be the answer.
Feedback patterns come from a precomputed guess x answer matrix, built with numpy by an
implementation independent of :func:`vf_wordle.game.score_guess`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

import numpy as np

from vf_wordle.words import WORD_LENGTH, answer_words

_MARK_VALUE = {"X": 0, "Y": 1, "G": 2}
_NUM_PATTERNS = 3**WORD_LENGTH
_FEEDBACK = re.compile(
    r"^Guess \d+/\d+: (?P<word>[A-Za-z]{5})[ \t]*\n"
    r"(?P<letters>[A-Za-z](?: [A-Za-z]){4})[ \t]*\n"
    r"(?P<marks>[GYX](?: [GYX]){4})[ \t]*$",
    re.MULTILINE,
)

Feedback = tuple[str, str]  # (guessed word, marks such as "GYXXG")


def parse_feedback(text: str) -> list[Feedback]:
    """Every ``(word, marks)`` pair in a feedback message (invalid-guess notes are skipped)."""
    pairs = []
    for match in _FEEDBACK.finditer(text):
        word = match["word"].lower()
        if match["letters"].replace(" ", "").lower() != word:
            raise ValueError(f"Feedback letters {match['letters']!r} do not spell {word!r}.")
        pairs.append((word, match["marks"].replace(" ", "")))
    return pairs


def marks_code(marks: str) -> int:
    """A marks string as a base-3 number (X=0, Y=1, G=2; first letter least significant)."""
    return sum(_MARK_VALUE[m] * 3**i for i, m in enumerate(marks))


def _letters(words: Sequence[str]) -> np.ndarray:
    return np.frombuffer("".join(words).encode("ascii"), dtype=np.uint8).reshape(len(words), -1)


def pattern_matrix(guesses: Sequence[str], secrets: Sequence[str]) -> np.ndarray:
    """``codes[i, j]``: :func:`marks_code` of guessing ``guesses[i]`` against ``secrets[j]``.

    Vectorized: greens are letter equality; letter ``i`` of a guess is yellow when it is not
    green and the secret's non-green copies of that letter outnumber the yellows already
    given to the same letter at earlier positions of the guess.
    """
    g, s = _letters(guesses), _letters(secrets)
    green = g[:, None, :] == s[None, :, :]  # (G, S, L)
    yellow = np.zeros_like(green)
    codes = np.zeros(green.shape[:2], dtype=np.int32)
    for i in range(WORD_LENGTH):
        letter = g[:, i][:, None]  # (G, 1)
        available = np.zeros(codes.shape, dtype=np.int8)
        for j in range(WORD_LENGTH):
            available += (s[None, :, j] == letter) & ~green[:, :, j]
        used = np.zeros(codes.shape, dtype=np.int8)
        for k in range(i):
            used += (g[:, k] == g[:, i])[:, None] & yellow[:, :, k]
        yellow[:, :, i] = ~green[:, :, i] & (available > used)
        codes += (2 * green[:, :, i] + yellow[:, :, i]).astype(np.int32) * 3**i
    return codes.astype(np.uint8)


class EntropySolver:
    """Entropy-greedy Wordle solver over the answer list (see the module docstring)."""

    def __init__(self, opener: str = "salet", extra_guesses: Iterable[str] = ()) -> None:
        self.answers: list[str] = list(answer_words())
        extra = [w for w in dict.fromkeys([opener, *extra_guesses]) if w not in set(self.answers)]
        self.guesses: list[str] = self.answers + extra  # answer i is guess i
        self.opener = opener
        self._index = {word: i for i, word in enumerate(self.guesses)}
        self._codes = pattern_matrix(self.guesses, self.answers)
        self._cache: dict[tuple[Feedback, ...], str] = {}

    def _row(self, word: str) -> np.ndarray:
        index = self._index.get(word)
        if index is not None:
            return self._codes[index]
        return pattern_matrix([word], self.answers)[0]

    def candidates(self, history: Sequence[Feedback]) -> list[str]:
        """Answer words consistent with every ``(word, marks)`` seen."""
        return [self.answers[i] for i in self._candidate_indices(history)]

    def _candidate_indices(self, history: Sequence[Feedback]) -> np.ndarray:
        mask = np.ones(len(self.answers), dtype=bool)
        for word, marks in history:
            mask &= self._row(word) == marks_code(marks)
        return np.flatnonzero(mask)

    def next_guess(self, history: Sequence[Feedback]) -> str:
        """The next guess after ``history``. Raises ``ValueError`` when no answer word fits
        the feedback (which means the feedback was wrong)."""
        key = tuple(history)
        if key in self._cache:
            return self._cache[key]
        if not history:
            return self.opener
        found = self._candidate_indices(history)
        if len(found) == 0:
            raise ValueError(f"No answer word is consistent with the feedback {list(history)}.")
        if len(found) <= 2:
            best = self.answers[found[0]]
        else:
            sub = self._codes[:, found].astype(np.int64)  # (G, n)
            offsets = sub + np.arange(len(self.guesses))[:, None] * _NUM_PATTERNS
            counts = np.bincount(offsets.ravel(), minlength=len(self.guesses) * _NUM_PATTERNS)
            p = counts.reshape(len(self.guesses), _NUM_PATTERNS) / len(found)
            with np.errstate(divide="ignore", invalid="ignore"):
                entropy = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
            entropy[found] += 1e-6  # ties: prefer a word that may win now
            best = self.guesses[int(np.argmax(entropy))]
        self._cache[key] = best
        return best


@cache
def default_solver() -> EntropySolver:
    """A shared solver (building the pattern matrix takes about a second)."""
    return EntropySolver()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def make_solver_handler(
    solver: EntropySolver | None = None, use_think: bool | None = None
) -> Callable[[dict[str, Any]], str]:
    """A ScriptedServer ``handler`` that plays Wordle with ``solver``.

    ``use_think=None`` answers with a ``<think>`` block when the system prompt mentions
    ``<think>``.
    """
    solver = solver or default_solver()

    def handler(request: dict[str, Any]) -> str:
        messages = request.get("messages") or []
        history: list[Feedback] = []
        for message in messages:
            if message.get("role") == "user":
                history.extend(parse_feedback(_text(message.get("content"))))
        word = solver.next_guess(history)
        reply = f"<guess>\n{word}\n</guess>"
        think = use_think
        if think is None:
            think = any(
                m.get("role") == "system" and "<think>" in _text(m.get("content")) for m in messages
            )
        if think:
            left = len(solver.candidates(history))
            reply = f"<think>\n{left} answer words fit the feedback so far.\n</think>\n{reply}"
        return reply

    return handler
