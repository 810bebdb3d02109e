"""AdaptiveTeachingReward: how much a teaching improves the student.

For each teaching, with ``with`` and ``without`` the student's score (1.0 correct, 0.0 not)
with and without the teaching, ``Δ = with − without`` and ``n`` the teaching's length in
tokens::

    reward = −degradation_penalty_multiplier · |Δ|               if Δ < 0
    reward = Δ · (1 + efficiency_weight · 100 / (100 + n))        otherwise

so a teaching that breaks a correct student costs twice (by default) what fixing a wrong
one earns, and a shorter fix earns more.

``n`` is ``teaching_tokens`` when given (``TeacherGRPOTrainer`` passes the teacher's sampled
token count), else the teaching's length under ``tokenizer``; with neither (the reward
called on its own, as documented, with no tokenizer) it is the number of
whitespace-separated words of the teaching (:func:`word_count`), a tokenizer-free stand-in
that is about 0.75 times a typical BPE token count for English.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from verifiers.utils.async_utils import in_event_loop
from verifiers_trainer.teacher.extraction import extract_solution, message_text, question_text

#: Keyword names read by ``__call__``, each with the dataset-column names that may stand in.
_KEYWORDS = {
    "ground_truths": ("ground_truths", "ground_truth", "answer"),
    "baseline_solutions": ("baseline_solutions", "baseline_solution"),
    "solutions": ("solutions", "solution"),
    "questions": ("questions", "question"),
    "teaching_tokens": ("teaching_tokens",),
}


def word_count(text: str) -> int:
    """Whitespace-separated words of ``text``: the teaching length without a tokenizer."""
    return len(str(text or "").split())


def adaptive_teaching_reward(with_teaching: float, without_teaching: float, teaching_tokens: int,
                             degradation_penalty_multiplier: float = 2.0,
                             efficiency_weight: float = 1.0) -> float:
    """The reward formula (module docstring)."""
    delta = with_teaching - without_teaching
    if delta < 0:
        return -degradation_penalty_multiplier * abs(delta)
    efficiency_bonus = 100.0 / (100.0 + teaching_tokens)
    return delta * (1.0 + efficiency_weight * efficiency_bonus)


@dataclass(frozen=True)
class TeachingOutcome:
    """One teaching, scored: the student's score with and without it, its length, reward."""

    with_teaching: float
    without_teaching: float
    teaching_tokens: int
    reward: float

    @property
    def delta(self) -> float:
        return self.with_teaching - self.without_teaching


def teaching_metrics(outcomes: Sequence[TeachingOutcome], prefix: str = "teaching/") -> dict[str, float]:
    """Student accuracy with and without teaching, their difference, the share of teachings
    that improved / degraded the student, and the mean teaching length (tokens)."""
    if not outcomes:
        return {}
    student = statistics.fmean(o.with_teaching for o in outcomes)
    baseline = statistics.fmean(o.without_teaching for o in outcomes)
    return {
        f"{prefix}student_accuracy": student,
        f"{prefix}baseline_accuracy": baseline,
        f"{prefix}accuracy_delta": student - baseline,
        f"{prefix}improvement_rate": statistics.fmean(o.delta > 0 for o in outcomes),
        f"{prefix}degradation_rate": statistics.fmean(o.delta < 0 for o in outcomes),
        f"{prefix}teaching_length": statistics.fmean(o.teaching_tokens for o in outcomes),
    }


class AdaptiveTeachingReward:
    """Rewards a teaching by how much it improves a student (module docstring).

    A TRL-style reward function: ``reward(prompts, completions, ground_truths=...,
    baseline_solutions=..., solutions=..., questions=...) -> list[float]``, where
    ``completions`` are the teachings, ``solutions`` the student's answers given each
    teaching and ``baseline_solutions`` its answers without. ``TeacherGRPOTrainer`` passes
    all of these (and ``teaching_tokens``, counted from the teacher's sampled token ids).

    In a plain ``GRPOTrainer`` (reward-function form, a dataset with a ``ground_truth`` or
    ``answer`` column) the reward asks the student itself, so give it ``student_model`` (a
    model with ``tokenizer``, or a path): missing ``solutions`` / ``baseline_solutions`` are
    generated (the baseline once per question, greedy). Called that way inside a running
    event loop it returns an awaitable, as the trainers' reward functions may.

    Args:
        student_model: the student for standalone use (a model or a path); optional.
        teacher_model: the model that writes the teachings (informational).
        tokenizer: counts teaching tokens when ``teaching_tokens`` is not given (without
            one, teachings are measured in words: :func:`word_count`); the student's
            tokenizer when ``student_model`` is a model.
        degradation_penalty_multiplier: penalty per unit of accuracy lost.
        efficiency_weight: weight of the shortness bonus ``100 / (100 + tokens)``.
    """

    def __init__(self, student_model: Any = None, teacher_model: Any = None, tokenizer: Any = None,
                 degradation_penalty_multiplier: float = 2.0, efficiency_weight: float = 1.0) -> None:
        if degradation_penalty_multiplier < 0:
            raise ValueError("degradation_penalty_multiplier must be >= 0; got "
                             f"{degradation_penalty_multiplier!r}.")
        if efficiency_weight < 0:
            raise ValueError(f"efficiency_weight must be >= 0; got {efficiency_weight!r}.")
        self.student_model = student_model
        self.teacher_model = teacher_model
        self.tokenizer = tokenizer
        self.degradation_penalty_multiplier = degradation_penalty_multiplier
        self.efficiency_weight = efficiency_weight
        self.__name__ = "adaptive_teaching"
        self.student: Any = None  # a Student, built on first standalone use
        self.last_outcomes: list[TeachingOutcome] = []
        self.student_max_tokens = 256  # per standalone student answer; set before first use
        self._baselines: dict[str, str] = {}
        self._pending: dict[str, asyncio.Future[str]] = {}

    # -- scoring ------------------------------------------------------------------------------
    def evaluate_student_performance(self, question: str, solution: str, ground_truth: str) -> float:
        """1.0 if ``solution`` equals ``ground_truth`` ignoring case and surrounding space,
        else 0.0 (an empty solution is never correct). ``question`` is not used."""
        solution, truth = str(solution or "").strip(), str(ground_truth or "").strip()
        return float(bool(solution) and solution.casefold() == truth.casefold())

    def outcome(self, question: str, solution: str, baseline_solution: str, ground_truth: str,
                teaching_tokens: int) -> TeachingOutcome:
        """Score one teaching."""
        if not str(ground_truth or "").strip():
            raise ValueError(f"No ground truth for the question {question[:80]!r}: every row "
                             "needs a non-empty answer (ground_truth / answer column).")
        with_ = self.evaluate_student_performance(question, solution, ground_truth)
        without = self.evaluate_student_performance(question, baseline_solution, ground_truth)
        reward = adaptive_teaching_reward(with_, without, teaching_tokens,
                                          self.degradation_penalty_multiplier, self.efficiency_weight)
        return TeachingOutcome(with_, without, int(teaching_tokens), reward)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> Any:
        """One reward per teaching (see the class docstring for the keywords)."""
        columns = self._columns(prompts, completions, kwargs)
        if columns["solutions"] is not None and columns["baseline_solutions"] is not None:
            return self._score(columns)
        if in_event_loop():
            return self._generate_and_score(columns)
        return asyncio.run(self._generate_and_score(columns))

    def _columns(self, prompts: Sequence[Any], completions: Sequence[Any],
                 kwargs: dict[str, Any]) -> dict[str, Any]:
        count = len(completions)
        columns: dict[str, Any] = {"teachings": [message_text(c) for c in completions]}
        for name, keys in _KEYWORDS.items():
            value = next((kwargs[k] for k in keys if kwargs.get(k) is not None), None)
            if value is not None:
                value = list(value)
                if len(value) != count:
                    raise ValueError(f"AdaptiveTeachingReward got {count} completions but "
                                     f"{len(value)} {name}; give one per completion.")
            columns[name] = value
        if columns["ground_truths"] is None:
            raise TypeError("AdaptiveTeachingReward needs ground_truths=[...] (a ground_truth "
                            "or answer column in the dataset): the correct answer per row.")
        if columns["questions"] is None:
            columns["questions"] = [question_text(p) for p in prompts]
        return columns

    def _score(self, columns: dict[str, Any]) -> list[float]:
        tokens = columns["teaching_tokens"] or [self.count_tokens(t) for t in columns["teachings"]]
        self.last_outcomes = [
            self.outcome(q, s, b, g, n) for q, s, b, g, n in zip(
                columns["questions"], columns["solutions"], columns["baseline_solutions"],
                columns["ground_truths"], tokens, strict=True)
        ]
        return [o.reward for o in self.last_outcomes]

    def count_tokens(self, text: str) -> int:
        """The teaching's length: tokens under ``tokenizer``, else words (:func:`word_count`)."""
        if self.tokenizer is None:
            return word_count(text)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- standalone: asking the student ------------------------------------------------------
    async def _generate_and_score(self, columns: dict[str, Any]) -> list[float]:
        student = self._student()
        questions = columns["questions"]
        with student.on_device():
            if columns["baseline_solutions"] is None:
                columns["baseline_solutions"] = list(await asyncio.gather(
                    *(self._baseline(student, q) for q in questions)))
            if columns["solutions"] is None:
                replies = await asyncio.gather(*(student.solve(q, t) for q, t in zip(
                    questions, columns["teachings"], strict=True)))
                columns["solutions"] = [extract_solution(r) for r in replies]
        return self._score(columns)

    async def _baseline(self, student: Any, question: str) -> str:
        """The student's baseline answer, asked once per question (also when several
        rollouts of one question are scored at the same time)."""
        if question in self._baselines:
            return self._baselines[question]
        pending = self._pending.get(question)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = asyncio.ensure_future(student.baseline(question))
            self._pending[question] = pending
        try:
            answer = extract_solution(await pending)
        finally:
            self._pending.pop(question, None)
        self._baselines[question] = answer
        return answer

    def _student(self) -> Any:
        if self.student is not None:
            return self.student
        if self.student_model is None:
            raise TypeError(
                "AdaptiveTeachingReward needs solutions=[...] (the student's answers given each "
                "teaching) and baseline_solutions=[...], or a student to ask: "
                "AdaptiveTeachingReward(student_model=model_or_path, tokenizer=...). "
                "TeacherGRPOTrainer passes them for you."
            )
        from verifiers_trainer.teacher.student import local_student
        from verifiers_trainer.teacher.templates import TeachingTemplates

        model, tokenizer = self.student_model, self.tokenizer
        if isinstance(model, str):
            from verifiers_trainer.models.loading import get_model_and_tokenizer

            model, tokenizer = get_model_and_tokenizer(model)
            self.tokenizer = self.tokenizer or tokenizer
        elif tokenizer is None:
            raise TypeError("AdaptiveTeachingReward(student_model=<a model>) needs tokenizer=... "
                            "(the student's tokenizer), or pass the model's path instead.")
        self.student = local_student(model, tokenizer, TeachingTemplates(),
                                     max_tokens=self.student_max_tokens,
                                     max_probe_tokens=50)
        return self.student
