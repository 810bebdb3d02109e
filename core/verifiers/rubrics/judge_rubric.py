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
from verifiers.rubrics.rubric import DEFAULT_REWARD_TIMEOUT, Rubric
from verifiers.types import Messages, State
from verifiers.utils.async_utils import sync_or_async

DEFAULT_JUDGE_PROMPT = """Given a ground-truth answer and a response, decide whether the \
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

#: Our name for the default judge prompt (``DEFAULT_JUDGE_PROMPT`` is verifiers 0.1.x's).
DEFAULT_JUDGE_TEMPLATE = DEFAULT_JUDGE_PROMPT

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


_PLACEHOLDERS = ("question", "answer", "response", "prompt", "completion")


def check_template(template: str) -> str:
    """Raise a clear error when a judge prompt uses an unknown ``{placeholder}``."""
    try:
        template.format(**{k: "" for k in _PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"The judge prompt uses an unknown placeholder or a stray brace ({exc}); available: "
            "{question}, {answer}, {response} (aliases {prompt}, {completion}). "
            "Double literal braces as {{ }}."
        ) from exc
    return template


def _time_bound(policy: RetryPolicy) -> float | None:
    """Long enough for one judge request with all its retries."""
    if policy.timeout is None:
        return None
    attempts = policy.max_retries + 1
    return max(DEFAULT_REWARD_TIMEOUT, attempts * policy.timeout + policy.max_retries * policy.backoff_max + 30)


class JudgeRubric(Rubric):
    """Scores rollouts by asking judge models (verifiers 0.1.x's ``JudgeRubric``, plus
    several judges and verdict parsing).

    ``await judge(prompt, completion, answer, state)`` sends the judge prompt (``{question}``,
    ``{answer}``, ``{response}``) to ``judge_model`` and returns the judge's reply text,
    cached in ``state["judge_response"]``; the author's own reward function turns it into a
    score (``judge`` reaches reward functions by name)::

        rubric = vf.JudgeRubric(judge_client=client, judge_model="gpt-4.1-mini")

        async def correct(judge, prompt, completion, answer, state):
            reply = await judge(prompt, completion, answer, state)
            return 1.0 if "yes" in reply.lower() else 0.0

        rubric.add_reward_func(correct)

    Called from a synchronous reward function, ``judge(...)`` returns the text directly.
    As in 0.1.x, the rubric adds no reward function of its own in that form.

    Several judges: ``judge_models=[...]`` with ``aggregation`` (``mean``, ``min``, ``max``,
    ``majority``) asks every judge, reads each verdict (yes/no or a score, see
    :func:`parse_verdict`) and combines them in :meth:`judge_score`; in this form (and
    without ``funcs``) ``judge_score`` is the rubric's reward. Each judge's prompt, reply
    and score is kept in
    ``state["judge"]``. A judge that fails (timeout, server error, unreadable verdict)
    records an error on the rollout instead of scoring it 0.

    Args:
        parser: reads the response put into the judge prompt.
        parallelize_scoring: call reward functions concurrently (default False, as 0.1.x).
        judge_client: any OpenAI-compatible client, sync or async (``client`` is an alias);
            default ``openai.AsyncOpenAI()``.
        judge_model: the model ``judge()`` asks (default the first of ``judge_models``,
            else ``"gpt-4.1-nano"``).
        judge_sampling_args: sampling arguments of judge requests.
        judge_prompt: the ``str.format`` template (``template`` is an alias).
        judge_models, aggregation: several judges and how :meth:`judge_score` combines them.
        max_score: the top of a numeric verdict's scale (integers are divided by it).
        retry_policy: timeouts and retries of judge requests (default 120 s, 3 retries).
        funcs, weights: reward functions (for example ones that call ``judge``).
        reward_timeout: seconds per reward function call; ``"auto"`` allows one judge
            request with all the retries of ``retry_policy``.
    """

    def __init__(
        self,
        parser: Parser | None = None,
        parallelize_scoring: bool = False,
        judge_client: Any = None,
        judge_model: str | None = None,
        judge_sampling_args: dict[str, Any] | None = None,
        judge_prompt: str | None = None,
        *,
        judge_models: Sequence[str] | None = None,
        aggregation: Aggregation | None = None,
        template: str | None = None,
        client: Any = None,
        max_score: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        funcs: Sequence[Any] | None = None,
        weights: Sequence[float] | None = None,
        reward_timeout: float | Literal["auto"] | None = "auto",
        **kwargs: Any,
    ) -> None:
        if judge_client is not None and client is not None and judge_client is not client:
            raise ValueError("JudgeRubric got both judge_client and client; pass one of them.")
        if judge_prompt is not None and template is not None and judge_prompt != template:
            raise ValueError("JudgeRubric got both judge_prompt and template; pass one of them.")
        if aggregation is not None and aggregation not in ("mean", "min", "max", "majority"):
            raise ValueError(f"aggregation={aggregation!r}: use mean, min, max or majority.")
        if judge_models is not None and (
            isinstance(judge_models, str)
            or not judge_models
            or not all(isinstance(m, str) and m for m in judge_models)
        ):
            raise ValueError(f"judge_models must be a non-empty list of model names, got {judge_models!r}.")
        policy = retry_policy or RetryPolicy(timeout=120.0)
        super().__init__(
            funcs=funcs, weights=weights, parser=parser, parallelize_scoring=parallelize_scoring,
            reward_timeout=_time_bound(policy) if reward_timeout == "auto" else reward_timeout,
            **kwargs,
        )
        self.judge_client = judge_client if judge_client is not None else client
        self.judge_models = list(judge_models) if judge_models else [judge_model or "gpt-4.1-nano"]
        self.judge_model = judge_model or self.judge_models[0]
        self.judge_prompt = check_template(judge_prompt or template or DEFAULT_JUDGE_PROMPT)
        self.aggregation: Aggregation = aggregation or "mean"
        self.judge_sampling_args = normalize_sampling_args(judge_sampling_args)
        self.max_score = max_score
        self.retry_policy = policy
        self.class_objects.update(
            judge=self.judge, judge_client=self.judge_client, judge_model=self.judge_model,
            judge_prompt=self.judge_prompt, judge_sampling_args=self.judge_sampling_args,
        )
        if funcs is None and (judge_models is not None or aggregation is not None):
            self.add_reward_func(self.judge_score, 1.0)  # the multi-judge form's reward

    @property
    def template(self) -> str:
        """The judge prompt (alias of ``judge_prompt``)."""
        return self.judge_prompt

    @template.setter
    def template(self, value: str) -> None:
        self.judge_prompt = check_template(value)

    async def _client(self) -> Any:
        if self.judge_client is None:
            import openai

            try:
                self.judge_client = openai.AsyncOpenAI()
            except openai.OpenAIError as exc:
                raise JudgeError(
                    f"JudgeRubric has no judge_client and the default OpenAI client could not be "
                    f"made ({exc}); pass judge_client=OpenAI(base_url=..., api_key=...)."
                ) from exc
        return await client_for_loop(self.judge_client)

    def render(self, prompt: Messages, completion: Messages, answer: Any) -> str:
        """The judge prompt for one rollout."""
        if isinstance(prompt, list):
            question = message_text(prompt[-1]) if prompt else ""
        else:
            question = str(prompt)
        response = self.parser.parse_answer(completion)
        if response is None:
            response = completion if isinstance(completion, str) else "\n".join(
                message_text(m) for m in self.parser.get_assistant_messages(completion)
            )
        values = {
            "question": question, "prompt": question, "answer": answer,
            "response": response, "completion": response,
        }
        return self.judge_prompt.format(**values)

    async def _reply(self, model: str, text: str) -> str:
        try:
            response = await create_chat(
                await self._client(), model, [{"role": "user", "content": text}],
                self.judge_sampling_args, policy=self.retry_policy,
            )
        except ModelRequestError as exc:
            raise JudgeError(f"judge {model!r} failed: {exc}") from exc
        return str(response.choices[0].message.content or "")

    @sync_or_async
    async def judge(
        self,
        prompt: Messages,
        completion: Messages,
        answer: Any,
        state: State | None = None,
        **kwargs: Any,
    ) -> str:
        """The reply text of ``judge_model`` to the judge prompt for this rollout, cached in
        ``state["judge_response"]`` (keyed by the judge prompt). Extra keyword arguments (a
        reward function's own ``**kwargs``, forwarded) are accepted, as in 0.1.x, and not
        used. Raises :class:`JudgeError` when the judge cannot be reached."""
        text = self.render(prompt, completion, answer)
        state = {} if state is None else state
        cache = state.get("judge_response")
        if isinstance(cache, dict) and text in cache:
            return cache[text]
        reply = await self._reply(self.judge_model, text)
        if not isinstance(cache, dict):
            cache = {}
        cache[text] = reply
        state["judge_response"] = cache
        return reply

    async def _verdict(self, model: str, text: str) -> tuple[float, str]:
        reply = await self._reply(model, text)
        try:
            return parse_verdict(reply, self.max_score), reply
        except JudgeError as exc:
            raise JudgeError(f"judge {model!r}: {exc}") from exc

    async def judge_score(
        self, prompt: Messages, completion: Messages, answer: Any, state: State, **kwargs: Any
    ) -> float:
        """Every judge in ``judge_models`` asked, its verdict read as a score in [0, 1], the
        scores combined by ``aggregation``; the replies are logged in ``state["judge"]``."""
        text = self.render(prompt, completion, answer)
        cache = state.setdefault("judge", [])
        done = {
            entry["model"]: entry
            for entry in cache
            if entry.get("prompt") == text and "score" in entry  # failed judges are asked again
        }
        todo = [m for m in self.judge_models if m not in done]
        results = await asyncio.gather(*(self._verdict(m, text) for m in todo), return_exceptions=True)
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
        value = aggregate([done[m]["score"] for m in self.judge_models], self.aggregation)
        if math.isnan(value):
            raise JudgeError("judges returned NaN")
        return value
