"""JudgeRubric: rewards from one or several LLM judges through OpenAI-compatible clients."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from verifiers.clients import (
    ModelRequestError,
    RetryPolicy,
    client_for_loop,
    create_chat,
    normalize_sampling_args,
)
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


_YES = re.compile(r"^[\W_]*(yes|correct|true|pass)\b", re.IGNORECASE)
_NO = re.compile(r"^[\W_]*(no|incorrect|wrong|false|fail)\b", re.IGNORECASE)
_VERDICT_WORD = re.compile(
    r"\b(?:verdict|answer|judgement|judgment|decision)\s*[:=]\s*\W*(yes|no|correct|incorrect)\b",
    re.IGNORECASE,
)
_SCORE_TAG = re.compile(r"<score>\s*(.*?)\s*</score>", re.DOTALL | re.IGNORECASE)
_NUM = r"(-?\d+(?:\.\d+)?)"
_FRACTION = re.compile(_NUM + r"\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_SCORE_LABEL = re.compile(r"\b(?:score|rating|grade)\s*(?:is|of|[:=])?\s*" + _NUM, re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^[^\w\-]*" + _NUM + r"\b")


def _scaled(number: str, max_score: float) -> float:
    """A bare number: a decimal in [0, 1] (``0.25``, ``1.0``) is a probability; anything
    else (``7``, ``1``, ``12``) is on the 0..``max_score`` scale. Clamped to [0, 1]."""
    value = float(number)
    if "." in number and 0.0 <= value <= 1.0:
        return value
    return min(1.0, max(0.0, value / max_score))


def _numeric(chunk: str, max_score: float, anywhere: bool) -> float | None:
    if m := _FRACTION.search(chunk):
        num, den = float(m.group(1)), float(m.group(2))
        if den > 0:
            return min(1.0, max(0.0, num / den))
    if m := _SCORE_LABEL.search(chunk):
        return _scaled(m.group(1), max_score)
    if m := (_LEADING_NUMBER.search(chunk) if not anywhere else re.search(_NUM, chunk)):
        return _scaled(m.group(1), max_score)
    return None


def parse_verdict(text: str, max_score: float = 10.0) -> float:
    """Turn a judge's reply into a score in [0, 1].

    In order: a ``<score>...</score>`` tag (``7``, ``7/10``, ``0.7``); a reply that starts
    with a verdict word (``yes``, ``correct``, ``no``, ``incorrect``...); a labelled verdict
    (``Verdict: no``); a fraction (``7/10``, ``8 out of 10``); a labelled score
    (``Score: 9``); a reply that starts with a number. Integers are read on a
    0..``max_score`` scale, decimals in [0, 1] as they are. Raises :class:`JudgeError` when
    none applies.
    """
    if not isinstance(text, str) or not text.strip():
        raise JudgeError("the judge returned an empty reply")
    tags = _SCORE_TAG.findall(text)
    if tags:
        value = _numeric(tags[-1], max_score, anywhere=True)
        if value is not None:
            return value
    if _YES.search(text):
        return 1.0
    if _NO.search(text):
        return 0.0
    if m := _VERDICT_WORD.search(text):
        return 1.0 if m.group(1).lower() in ("yes", "correct") else 0.0
    value = _numeric(text, max_score, anywhere=False)
    if value is not None:
        return value
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
        self.judge_sampling_args = normalize_sampling_args(judge_sampling_args)
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
        done = {
            entry["model"]: entry
            for entry in cache
            if entry.get("prompt") == text and "score" in entry  # failed judges are asked again
        }
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
