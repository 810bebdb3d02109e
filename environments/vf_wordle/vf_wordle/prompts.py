"""The system prompt (rules and answer format) and the opening message of every game."""

from __future__ import annotations

from vf_wordle.feedback import LEGEND


def system_prompt(max_guesses: int, format_str: str, use_think: bool) -> str:
    """The default system prompt: the rules, the feedback legend and the reply format."""
    think = (
        "Think step by step inside <think>...</think> (which letters are placed, which are "
        "elsewhere, which are ruled out), then give your guess.\n"
        if use_think
        else "Reply with your guess only.\n"
    )
    return (
        "You are playing Wordle. Find the secret 5-letter English word in at most "
        f"{max_guesses} guesses.\n\n"
        "After each guess you get feedback: your guess spelled out, and under each letter "
        f"one mark: {LEGEND}. If a letter appears more often in your guess than in the "
        "secret word, only as many copies as the word has are marked G or Y (greens first), "
        "the rest X.\n\n"
        "Every guess must be a real 5-letter English word. An invalid guess (wrong length, "
        "not a word, or no <guess> tag) still uses up one of your guesses.\n\n"
        f"{think}Format every reply exactly like this:\n{format_str}"
    )


def opening_message(max_guesses: int) -> str:
    """The first user message of a game (the dataset's ``question``)."""
    return (
        "Let's play Wordle. I have picked a secret 5-letter English word. "
        f"You have {max_guesses} guesses. Make your first guess."
    )
