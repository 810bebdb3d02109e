"""JudgeRubric: rewards from one or several LLM judges through OpenAI-compatible clients."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from verifiers.clients import ModelRequestError, RetryPolicy, client_for_loop, create_chat
from verifiers.parsers.parser import Parser, message_text
from verifiers.rubrics.rubric import Rubric
from verifiers.types import Messages, State

DEFAULT_JUDGE_TEMPLATE = """Given a ground-truth answer and a response, decide whether the \
response is correct.

Question:
```
{question}
```

Ground truth answer:
```
{answer}
```

Response:
```
{response}
```

Reply with "yes" if the response is correct and "no" otherwise."""

Aggregation = Literal["mean", "min", "max", "majority"]


class JudgeError(Exception):
    """A judge that could not give a usable verdict (timeout, server error, unparsable)."""


_YES = re.compile(r"^\W*(yes|correct|true|pass)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|incorrect|wrong|false|fail)\b", re.IGNORECASE)
_VERDICT_WORD = re.compile(
    r"\b(?:verdict|answer|judgement|judgment|decision)\s*[:=]\s*\W*(yes|no|correct|incorrect)\b",
    re.IGNORECASE,
)
_SCORE_TAG = re.compile(r"<score>\s*(.*?)\s*</score>", re.DOTALL | re.IGNORECASE)
_FRACTION = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_SCORE_LABEL = re.compile(r"\b(?:score|rating|grade)\s*(?:is|of|[:=])?\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"^\W*(-?\d+(?:\.\d+)?)\b")


def parse_verdict(text: str, max_score: float = 10.0) -> float:
    """Turn a judge's reply into a score in [0, 1].

    Understands ``<score>7</score>``, ``7/10``, ``8 out of 10``, ``Score: 9``, a bare number
    (a number above 1 is read on a 0..``max_score`` scale), and yes/no style verdicts
    (``yes``, ``correct``, ``Verdict: no``). Raises :class:`JudgeError` otherwise.
    """
    if not isinstance(text, str) or not text.strip():
        raise JudgeError("the judge returned an empty reply")
    candidates = [text]
    tag = _SCORE_TAG.findall(text)
    if tag:
        candidates.insert(0, tag[-1])
    for chunk in candidates:
        if m := _FRACTION.search(chunk):
            num, den = float(m.group(1)), float(m.group(2))
            if den > 0:
                return min(1.0, max(0.0, num / den))
        number = _SCORE_LABEL.search(chunk) or _NUMBER.search(chunk)
        if number:
            value = float(number.group(1))
            return min(1.0, max(0.0, value / max_score if value > 1 else value))
    if m := _VERDICT_WORD.search(text):
        return 1.0 if m.group(1).lower() in ("yes", "correct") else 0.0
    if _YES.search(text):
        return 1.0
    if _NO.search(text):
        return 0.0
    raise JudgeError(f"could not read a verdict from the judge's reply: {text[:200]!r}")


def aggregate(scores: Sequence[float], how: Aggregation) -> float:
    if how == "mean":
        return sum(scores) / len(scores)
    if how == "min":
        return min(scores)
    if how == "max":
        return max(scores)
    if how == "majority":
        return 1.0 if sum(s >= 0.5 for s in scores) * 2 > len(scores) else 0.0
    raise ValueError(f"Unknown aggregation {how!r}; use mean, min, max or majority.")


class JudgeRubric(Rubric):
    """Scores rollouts by asking judge models.

    ``judge_client`` (or ``client``) is any OpenAI-compatible client; ``judge_model`` names
    one judge, ``judge_models`` several, combined with ``aggregation`` (mean, min, max,
    majority). The template can use ``{question}``, ``{answer}``, ``{response}`` and their
    aliases ``{prompt}`` and ``{completion}``. Each judge's reply and score is kept in
    ``state["judge"]``. A judge that fails (timeout, server error, unparsable verdict)
    records an error on the rollout instead of scoring it 0.

    The judge is available to other reward functions as the ``judge`` argument::

        async def correct(judge, prompt, completion, answer, state):
            return await judge(prompt, completion, answer, state)
    """

    def __init__(
        self,
        judge_client: Any = None,
        judge_model: str = "gpt-4.1-nano",
        judge_models: Sequence[str] | None = None,
        template: str | None = None,
        aggregation: Aggregation = "mean",
        parser: Parser | None = None,
        judge_sampling_args: dict[str, Any] | None = None,
        max_score: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        client: Any = None,
        judge_prompt: str | None = None,
        funcs: Sequence[Any] | None = None,
        weights: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(funcs=funcs, weights=weights, parser=parser, **kwargs)
        if aggregation not in ("mean", "min", "max", "majority"):
            raise ValueError(f"aggregation={aggregation!r}: use mean, min, max or majority.")
        self.judge_client = judge_client if judge_client is not None else client
        self.judge_models = list(judge_models) if judge_models else [judge_model]
        self.template = template or judge_prompt or DEFAULT_JUDGE_TEMPLATE
        self.aggregation = aggregation
        self.judge_sampling_args = dict(judge_sampling_args or {})
        self.max_score = max_score
        self.retry_policy = retry_policy or RetryPolicy(timeout=120.0)
        self.class_objects["judge"] = self.judge
        if not funcs:
            self.add_reward_func(self.judge_score, 1.0)

    async def _client(self) -> Any:
        if self.judge_client is None:
            import openai

            self.judge_client = openai.AsyncOpenAI()
        return await client_for_loop(self.judge_client)

    def render(self, prompt: Messages, completion: Messages, answer: Any) -> str:
        if isinstance(prompt, list):
            users = [m for m in prompt if m.get("role") == "user"]
            question = message_text(users[-1]) if users else ""
        else:
            question = prompt
        response = self.parser.parse_answer(completion)
        if response is None:
            response = completion if isinstance(completion, str) else "\n".join(
                message_text(m) for m in self.parser.get_assistant_messages(completion)
            )
        values = {
            "question": question, "prompt": question, "answer": answer,
            "response": response, "completion": response,
        }
        try:
            return self.template.format(**values)
        except (KeyError, IndexError) as exc:
            raise ValueError(
                f"JudgeRubric template uses an unknown placeholder {exc}; available: "
                "{question}, {answer}, {response} (aliases {prompt}, {completion}). "
                "Double literal braces as {{ }}."
            ) from exc

    async def _ask(self, model: str, text: str) -> tuple[float, str]:
        try:
            response = await create_chat(
                await self._client(), model, [{"role": "user", "content": text}],
                self.judge_sampling_args, policy=self.retry_policy,
            )
        except ModelRequestError as exc:
            raise JudgeError(f"judge {model!r} failed: {exc}") from exc
        reply = response.choices[0].message.content or ""
        try:
            return parse_verdict(reply, self.max_score), reply
        except JudgeError as exc:
            raise JudgeError(f"judge {model!r}: {exc}") from exc

    async def judge(
        self, prompt: Messages, completion: Messages, answer: Any, state: State | None = None
    ) -> float:
        """Ask every judge model, aggregate their scores, and log the replies in the state."""
        text = self.render(prompt, completion, answer)
        state = {} if state is None else state
        cache = state.setdefault("judge", [])
        done = {entry["model"]: entry for entry in cache if entry.get("prompt") == text}
        todo = [m for m in self.judge_models if m not in done]
        results = await asyncio.gather(*(self._ask(m, text) for m in todo), return_exceptions=True)
        failures = []
        for model, result in zip(todo, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failures.append(str(result))
                cache.append({"model": model, "prompt": text, "error": str(result)})
            else:
                score, reply = result
                entry = {"model": model, "prompt": text, "response": reply, "score": score}
                cache.append(entry)
                done[model] = entry
        if failures:
            raise JudgeError("; ".join(failures))
        scores = [done[m]["score"] for m in self.judge_models]
        value = aggregate(scores, self.aggregation)
        if math.isnan(value):
            raise JudgeError("judges returned NaN")
        return value

    async def judge_score(
        self, prompt: Messages, completion: Messages, answer: Any, state: State, **kwargs: Any
    ) -> float:
        """The default reward: the aggregated judges' score in [0, 1]."""
        return await self.judge(prompt, completion, answer, state)
