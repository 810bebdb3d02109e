"""TeachingEnv: the teaching protocol as an environment.

For each question of a batch, the student first gives a baseline solution and a short
diagnostic probe. Each rollout then samples one teaching from the teacher, prompted with the
question and that probe (this prompt is the rollout's prompt, so a trainer computes the
teacher's loss under exactly the prompt its teaching was sampled from), and the student
solves the question again given the teaching. Reward functions see the teaching and both of
the student's answers; ``state["teaching"]`` keeps the record.

The student is only prompted and never trained: its reply is kept in the state, not among
the rollout's turns.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any

import verifiers as vf
from verifiers.utils.async_utils import maybe_await
from verifiers_trainer.teacher.extraction import extract_solution, message_text, question_text
from verifiers_trainer.teacher.reward import AdaptiveTeachingReward, TeachingOutcome
from verifiers_trainer.teacher.student import Student
from verifiers_trainer.teacher.templates import TeachingTemplates

#: Keys the protocol adds to each row's ``info``.
PROTOCOL_KEYS = ("question", "probe", "baseline_response", "baseline_solution")


class TeachingEnv(vf.SingleTurnEnv):
    """Single-turn environment whose model is the teacher.

    Args:
        dataset, eval_dataset: rows with ``question`` and ``answer`` (the ground truth);
            other keys of ``info`` reach the reward functions as keyword columns.
        student: the :class:`Student` (may be set later, before generating).
        templates: the protocol's prompts.
        judge: scores the student (``evaluate_student_performance``) for ``state["teaching"]``.
        reward_funcs: TRL-style reward functions (``AdaptiveTeachingReward`` by default).
        tokenizer: counts teaching tokens when the server returns no token ids.
    """

    def __init__(self, dataset: Any, eval_dataset: Any = None, student: Student | None = None,
                 templates: TeachingTemplates | None = None,
                 judge: AdaptiveTeachingReward | None = None,
                 reward_funcs: Sequence[Callable[..., Any]] | None = None,
                 tokenizer: Any = None, **kwargs: Any) -> None:
        self.student = student
        self.templates = templates or TeachingTemplates()
        self.judge = judge or AdaptiveTeachingReward(tokenizer=tokenizer)
        self.tokenizer = tokenizer
        funcs = list(reward_funcs) if reward_funcs else [self.judge]
        rubric = vf.Rubric(funcs=[protocol_reward(f) for f in funcs])
        super().__init__(dataset=dataset, eval_dataset=eval_dataset, rubric=rubric, **kwargs)

    async def a_generate(self, inputs: Any = None, client: Any = None, model: str | None = None,
                         sampling_args: Any = None, max_concurrent: int | None = None,
                         rollouts_per_example: int = 1, **kwargs: Any) -> Any:
        """The student's baseline and probe for each question, then the teacher's rollouts
        (``rollouts_per_example`` teachings per row), each followed by the student's answer."""
        if self.student is None:
            raise RuntimeError("TeachingEnv has no student: set env.student = Student(...) "
                               "(TeacherGRPOTrainer does) before generating.")
        rows = self._expand(inputs, 1)
        with self.student.on_device():
            rows = await self.with_probes(rows)
            return await super().a_generate(rows, client, model, sampling_args, max_concurrent,
                                            rollouts_per_example, **kwargs)

    async def with_probes(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows whose prompt is the teacher's (question + the student's probe), with the
        student's baseline and probe in ``info`` (asked once per distinct question)."""
        questions = [_question(row) for row in rows]
        distinct = list(dict.fromkeys(questions))
        student = self.student
        assert student is not None
        baselines, probes = await asyncio.gather(
            asyncio.gather(*(student.baseline(q) for q in distinct)),
            asyncio.gather(*(student.probe(q) for q in distinct)),
        )
        by_question = dict(zip(distinct, zip(baselines, probes, strict=True), strict=True))
        out = []
        for row, question in zip(rows, questions, strict=True):
            baseline, probe = by_question[question]
            info = {**(row.get("info") or {}), "question": question, "probe": probe,
                    "baseline_response": baseline, "baseline_solution": extract_solution(baseline)}
            out.append({**row, "info": info, "prompt": self.templates.teacher(question, probe)})
        return out

    async def rollout(self, client: Any, model: str, prompt: Any, answer: Any = "",
                      task: str = "default", info: dict[str, Any] | None = None,
                      sampling_args: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        """The teacher's teaching, then the student's solution given it."""
        completion, state = await super().rollout(client, model, prompt, answer, task, info,
                                                  sampling_args, **kwargs)
        info = info or {}
        if "probe" not in info:
            raise RuntimeError("TeachingEnv rows need the student's probe: generate through "
                               "env.a_generate / env.evaluate, which add it.")
        assert self.student is not None
        teaching = message_text(completion)
        response = await self.student.solve(info["question"], teaching)
        solution = extract_solution(response)
        outcome = self.judge.outcome(info["question"], solution, info["baseline_solution"],
                                     str(answer), self._teaching_tokens(state, teaching))
        state["teaching"] = {"student_response": response, "student_solution": solution,
                             "with_teaching": outcome.with_teaching,
                             "without_teaching": outcome.without_teaching,
                             "teaching_tokens": outcome.teaching_tokens}
        return completion, state

    def _teaching_tokens(self, state: dict[str, Any], teaching: str) -> int:
        """The teaching's length: the teacher's sampled token ids, else the server's count,
        else the tokenizer's."""
        ids = [turn.get("completion_token_ids") for turn in state.get("turns", [])]
        if ids and all(i is not None for i in ids):
            return sum(len(i) for i in ids)
        counted = (state.get("usage") or {}).get("completion_tokens")
        if counted:
            return int(counted)
        return self.judge.count_tokens(teaching)


def outcome_of(state: dict[str, Any]) -> TeachingOutcome | None:
    """The ``TeachingOutcome`` recorded in a rollout's state (None if it has none)."""
    record = state.get("teaching")
    if not record:
        return None
    return TeachingOutcome(record["with_teaching"], record["without_teaching"],
                           record["teaching_tokens"], math.nan)


def protocol_reward(func: Callable[..., Any]) -> Callable[..., Any]:
    """A rubric function around a TRL-style reward function: it gets the teacher prompt and
    teaching as ``prompts`` / ``completions`` and the protocol's columns (``ground_truths``,
    ``baseline_solutions``, ``solutions``, ``questions``, ``teaching_tokens``) plus the row's
    other ``info`` keys, each as a one-element list."""

    async def reward(prompt: Any, completion: Any, answer: Any, state: dict[str, Any],
                     info: dict[str, Any]) -> float:
        record = state["teaching"]
        protocol = {
            "ground_truths": [answer], "baseline_solutions": [info["baseline_solution"]],
            "solutions": [record["student_solution"]], "questions": [info["question"]],
            "teaching_tokens": [record["teaching_tokens"]],
        }
        columns = {k: [v] for k, v in info.items() if k not in PROTOCOL_KEYS and k not in protocol}
        values = await maybe_await(func(prompts=[prompt], completions=[completion],
                                        **columns, **protocol))
        value = next(iter(values)) if values is not None else None
        return math.nan if value is None else float(value)

    reward.__name__ = getattr(func, "__name__", None) or type(func).__name__
    return reward


def _question(row: dict[str, Any]) -> str:
    info = row.get("info") or {}
    question = info.get("question") or row.get("question") or question_text(row.get("prompt"))
    if not question:
        raise ValueError(f"A row has no question (no 'question' and no user message in "
                         f"'prompt'): {str(row)[:200]}")
    return str(question)
