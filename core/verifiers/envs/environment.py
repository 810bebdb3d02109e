"""Environment: a dataset, a parser, a rubric and an interaction loop.

This base class owns what every environment shares: dataset formatting, talking to the
model (through :mod:`verifiers.clients`), running many rollouts concurrently with failures
recorded per rollout, and evaluation. Subclasses supply the interaction loop by
implementing :meth:`rollout` (``MultiTurnEnv`` does, with ``env_response`` and
``is_completed`` hooks).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import math
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

from verifiers.clients import (
    ContextLengthError,
    ModelRequestError,
    RetryPolicy,
    ServerUnreachableError,
    client_for_loop,
    create_chat,
    create_completion,
    gather_until_unreachable,
    normalize_sampling_args,
)
from verifiers.envs.tool_call import ToolCall, plain_messages
from verifiers.parsers.parser import Parser
from verifiers.results import GenerateOutputs
from verifiers.rollout import Rollout, Turn, error_text
from verifiers.rubrics.group_scoring import GroupScorer, score_records
from verifiers.rubrics.rubric import Rubric, record_error
from verifiers.types import (
    ChatMessage,
    Info,
    Messages,
    MessageType,
    RewardFunc,
    SamplingArgs,
    State,
)
from verifiers.utils import data_utils
from verifiers.utils.copying import json_copy
from verifiers.utils.gc_tuning import fewer_collections

logger = logging.getLogger(__name__)

ResultCallback = Callable[[Rollout], Any]

#: Keywords that ``generate``/``a_generate``/``rollout`` accept directly and put into the
#: request's sampling arguments (``env.rollout(..., temperature=0.7)``).
SAMPLING_KEYS = (
    "temperature", "top_p", "top_k", "min_p", "max_tokens", "max_completion_tokens", "seed",
    "stop", "presence_penalty", "frequency_penalty", "repetition_penalty", "logprobs",
    "top_logprobs", "logit_bias", "response_format", "tool_choice", "parallel_tool_calls",
    "extra_body",
)

_PARAMETERS = (
    "client", "model", "dataset", "eval_dataset", "system_prompt", "few_shot", "parser",
    "rubric", "sampling_args", "message_type", "oai_tools", "max_workers", "max_concurrent",
    "retry_policy", "rollout_timeout", "question_key", "answer_key", "env_id",
    "keep_responses", "max_turns", "tools",
)


def pop_sampling_kwargs(kwargs: dict[str, Any], sampling_args: SamplingArgs | None) -> SamplingArgs | None:
    """Move sampling keywords out of ``kwargs`` into a copy of ``sampling_args``."""
    picked = {k: kwargs.pop(k) for k in SAMPLING_KEYS if k in kwargs}
    if not picked:
        return sampling_args
    return {**(sampling_args or {}), **picked}


class Environment(ABC):
    """Base class of all environments.

    Args:
        dataset: training rows (a ``datasets.Dataset``, a list of dicts or a dict of
            columns) with a ``prompt`` or ``question`` column and optionally ``answer``,
            ``info``, ``task``.
        eval_dataset: held-out rows, same shape; ``evaluate`` uses it when present.
        system_prompt, few_shot: prepended to prompts built from ``question`` (chat only,
            as in verifiers 0.1.x: with ``message_type="completion"`` they raise).
        parser, rubric: how completions are read and scored.
        sampling_args: defaults for every model request (``temperature``, ``max_tokens``,
            ``top_p``, ...; unknown keys go to ``extra_body``, e.g. vLLM's ``top_k``).
        message_type: ``"chat"`` (messages) or ``"completion"`` (plain text prompts).
        client, model: used by ``evaluate``/``generate``/``rollout`` when they are not given.
        oai_tools: tool schemas sent with every chat request (``ToolEnv`` builds them).
        max_workers: threads for sync tools and reward functions when ``generate`` or
            ``evaluate`` run their own event loop.
        max_concurrent: default limit on rollouts in flight.
        retry_policy: timeouts and retries of model requests.
        rollout_timeout: seconds before a whole rollout is abandoned (recorded as failed).
        keep_responses: keep the raw response objects in ``state["responses"]`` after the
            rollout is scored (``False`` drops them, for very large runs).
        **kwargs: kept as attributes (``self.name``), as in verifiers 0.1.x; a name that
            looks like a misspelt parameter is refused.
    """

    def __init__(
        self,
        dataset: Any = None,
        eval_dataset: Any = None,
        system_prompt: str | None = None,
        few_shot: Sequence[ChatMessage] | None = None,
        parser: Parser | None = None,
        rubric: Rubric | None = None,
        sampling_args: SamplingArgs | None = None,
        message_type: MessageType = "chat",
        max_concurrent: int = 32,
        retry_policy: RetryPolicy | None = None,
        rollout_timeout: float | None = None,
        question_key: str = "question",
        answer_key: str = "answer",
        env_id: str | None = None,
        client: Any = None,
        model: str | None = None,
        oai_tools: list[dict[str, Any]] | None = None,
        max_workers: int = 512,
        keep_responses: bool = True,
        **kwargs: Any,
    ) -> None:
        close = {k: difflib.get_close_matches(k, _PARAMETERS, n=1, cutoff=0.8) for k in kwargs}
        misspelt = {k: m[0] for k, m in close.items() if m and m[0] != k}
        if misspelt:
            hints = ", ".join(f"{k!r} (did you mean {m!r}?)" for k, m in misspelt.items())
            raise TypeError(
                f"{type(self).__name__} got unexpected arguments {sorted(misspelt)}: {hints}. "
                f"Environment arguments are: {', '.join(_PARAMETERS)}."
            )
        if message_type not in ("chat", "completion"):
            raise ValueError(f"message_type must be 'chat' or 'completion', got {message_type!r}.")
        if message_type == "completion" and (system_prompt or few_shot):
            raise ValueError(
                "system_prompt and few_shot are not supported with message_type='completion'. "
                "Use message_type='chat', or give the dataset a ready 'prompt' column."
            )
        if dataset is None and eval_dataset is None:
            raise ValueError(
                f"{type(self).__name__} needs a dataset or an eval_dataset "
                "(rows with a 'question' or 'prompt' column)."
            )
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}.")
        self.logger = logging.getLogger(f"verifiers.envs.{type(self).__name__}")
        for key, value in kwargs.items():  # verifiers 0.1.x: extra keywords become attributes
            setattr(self, key, value)
        if kwargs:
            self.logger.debug("kept as attributes: %s", ", ".join(sorted(kwargs)))
        self.client = client
        self.model = model
        self.message_type: MessageType = message_type
        self.system_prompt = system_prompt
        self.few_shot = list(few_shot or [])
        self.parser = parser or Parser()
        self.rubric = rubric or Rubric(parser=self.parser)
        self.sampling_args: SamplingArgs = dict(sampling_args or {})
        if oai_tools is not None or not hasattr(self, "oai_tools"):
            self.oai_tools: list[dict[str, Any]] | None = oai_tools
        self.max_workers = max_workers
        self.max_concurrent = max_concurrent
        self.retry_policy = retry_policy or RetryPolicy()
        self.rollout_timeout = rollout_timeout
        self.keep_responses = keep_responses
        self.env_id = env_id
        self.question_key, self.answer_key = question_key, answer_key
        self.dataset = None if dataset is None else self.format_dataset(
            dataset, self.system_prompt, self.few_shot, question_key, answer_key)
        self.eval_dataset = None if eval_dataset is None else self.format_dataset(
            eval_dataset, self.system_prompt, self.few_shot, question_key, answer_key)

    def format_dataset(
        self,
        dataset: Any,
        system_prompt: str | None = None,
        few_shot: Sequence[ChatMessage] | None = None,
        question_key: str = "question",
        answer_key: str = "answer",
    ) -> Any:
        """The rows with the columns rollouts read (``prompt``, ``answer``, ``task``,
        ``example_id``); ``prompt`` is built from ``question_key`` where missing. Override
        to change how prompts are built (verifiers 0.1.x's hook)."""
        return data_utils.format_dataset(
            dataset, system_prompt=system_prompt, few_shot=few_shot,
            message_type=self.message_type, question_key=question_key, answer_key=answer_key,
        )

    def get_reward_funcs(self) -> list[RewardFunc]:
        return self.rubric.get_reward_funcs()

    def get_reward_weights(self) -> list[float]:
        return self.rubric.get_reward_weights()

    # -- datasets --------------------------------------------------------------------------
    def get_dataset(self, n: int = -1, seed: int | None = None) -> Any:
        if self.dataset is None:
            raise ValueError(f"{type(self).__name__} has no training dataset.")
        return _take(self.dataset, n, seed)

    def get_eval_dataset(self, n: int = -1, seed: int | None = None) -> Any:
        """The eval dataset, or the training dataset when there is none."""
        if self.eval_dataset is None:
            self.logger.info("No eval_dataset; evaluating on the training dataset.")
            return self.get_dataset(n, seed)
        return _take(self.eval_dataset, n, seed)

    def sample_prompts(self, n: int, seed: int | None = None) -> list[dict[str, Any]]:
        """``n`` training rows drawn at random without replacement (all rows when there are
        fewer), as dicts with ``prompt``, ``answer``, ``task``, ``info``."""
        dataset = self.get_dataset()
        picked = random.Random(seed).sample(range(len(dataset)), min(n, len(dataset)))
        return [dataset[i] for i in picked]

    # -- the interaction loop (subclasses) ------------------------------------------------
    @abstractmethod
    async def rollout(
        self,
        client: Any,
        model: str,
        prompt: Messages,
        answer: Any = "",
        task: str = "default",
        info: Info | None = None,
        sampling_args: SamplingArgs | None = None,
        **kwargs: Any,
    ) -> tuple[Messages, State]:
        """Run one episode; returns ``(completion, state)``."""

    # -- talking to the model -------------------------------------------------------------
    def init_state(
        self, prompt: Messages, answer: Any, task: str, info: Info | None, **extra: Any
    ) -> State:
        state: State = {
            "prompt": prompt,
            "completion": "" if isinstance(prompt, str) else [],
            "answer": answer,
            "task": task,
            "info": info or {},
            "turn": 0,
            "turns": [],
            "responses": [],
            "is_completed": False,
            "is_truncated": False,
            "error": None,
            "timing": {"generation_s": 0.0, "scoring_s": 0.0, "total_s": 0.0},
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            **extra,
        }
        if isinstance(prompt, str):
            state["responses_start_idx"] = []  # where each response starts in the completion
        return state

    def merged_sampling_args(
        self, sampling_args: SamplingArgs | None, message_type: MessageType | None = None
    ) -> SamplingArgs:
        """The environment's sampling arguments updated with ``sampling_args``, as sent.

        ``None`` values are dropped; for chat requests ``max_tokens`` is sent as
        ``max_completion_tokens`` (the OpenAI API's name, which vLLM also reads), as
        verifiers 0.1.x does."""
        args = {**self.sampling_args, **(sampling_args or {})}
        extra = {**(self.sampling_args.get("extra_body") or {}),
                 **((sampling_args or {}).get("extra_body") or {})}
        if extra:
            args["extra_body"] = extra
        if args.get("n", 1) != 1:
            raise ValueError(
                "sampling_args['n'] must be 1: each rollout is one sample. "
                "Use rollouts_per_example=... for several samples per prompt."
            )
        args.pop("n", None)
        args = {k: v for k, v in args.items() if v is not None}
        if (message_type or self.message_type) == "chat" and "max_tokens" in args:
            max_tokens = args.pop("max_tokens")
            if args.setdefault("max_completion_tokens", max_tokens) != max_tokens:
                raise ValueError(
                    f"sampling_args has max_tokens={max_tokens} and max_completion_tokens="
                    f"{args['max_completion_tokens']}; give one of them."
                )
        return normalize_sampling_args(args)

    async def get_model_response(
        self,
        client: Any,
        model: str,
        prompt: Messages,
        oai_tools: list[dict[str, Any]] | None = None,
        sampling_args: SamplingArgs | None = None,
        message_type: MessageType | None = None,
    ) -> Any:
        """One model request, as verifiers 0.1.x makes it; returns the raw response object
        (``ChatCompletion`` or ``Completion``).

        Requests go through the environment's retry policy; a request that fails for good
        raises :class:`ModelRequestError` (:class:`ContextLengthError` when the prompt no
        longer fits). Tools with ``message_type="completion"`` raise ``ValueError``.
        """
        message_type = message_type or self.message_type
        args = self.merged_sampling_args(sampling_args, message_type)
        client = await client_for_loop(self.resolve_client(client))
        if message_type == "chat":
            if not isinstance(prompt, list):
                raise TypeError(f"A chat request needs a list of messages, got {type(prompt).__name__}.")
            return await create_chat(
                client, model, prompt, args, tools=oai_tools, policy=self.retry_policy
            )
        if message_type != "completion":
            raise ValueError(f"message_type must be 'chat' or 'completion', got {message_type!r}.")
        if oai_tools:
            raise ValueError("oai_tools are not supported with message_type='completion'.")
        if not isinstance(prompt, str):
            raise TypeError(f"A completion request needs a string prompt, got {type(prompt).__name__}.")
        return await create_completion(client, model, prompt, args, policy=self.retry_policy)

    async def model_turn(
        self,
        client: Any,
        model: str,
        prompt: Messages,
        state: State,
        sampling_args: SamplingArgs | None = None,
        oai_tools: list[dict[str, Any]] | None = None,
    ) -> ChatMessage | str:
        """One model turn of a rollout: :meth:`get_model_response`, then
        :meth:`record_response`. Returns the assistant message (chat) or the text."""
        start = time.perf_counter()
        try:
            response = await self.get_model_response(
                client, model, prompt, oai_tools=oai_tools, sampling_args=sampling_args,
                message_type=self.message_type,
            )
        finally:
            state["timing"]["generation_s"] += time.perf_counter() - start
        return self.record_response(state, response)

    def record_response(self, state: State, response: Any) -> ChatMessage | str:
        """Keep one model response in ``state``: the raw object in ``state["responses"]``
        (verifiers 0.1.x) and what the server returned, token-exact, in
        ``state["turns"]`` (a :class:`~verifiers.rollout.Turn`). Returns the assistant
        message (chat) or the text."""
        fields = turn_record(response, self.message_type)
        message = fields.pop("_message")
        turn = Turn(**fields)
        state.setdefault("responses", []).append(response)
        if "responses_start_idx" in state and isinstance(state.get("completion"), str):
            state["responses_start_idx"].append(len(state["completion"]))
        state.setdefault("turns", []).append(turn)
        state["turn"] = state.get("turn", 0) + 1
        usage = turn.usage or {}
        totals = state.setdefault("usage", {"prompt_tokens": 0, "completion_tokens": 0})
        for key in ("prompt_tokens", "completion_tokens"):
            totals[key] = totals.get(key, 0) + (usage.get(key) or 0)
        if turn.finish_reason == "length":
            state["is_truncated"] = True
        return message

    def resolve_client(self, client: Any) -> Any:
        """``client``, else the environment's ``client``, else ``openai.AsyncOpenAI()``
        (configured by ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``)."""
        if client is not None:
            return client
        if self.client is not None:
            return self.client
        return _default_client()

    def resolve_model(self, model: str | None) -> str:
        if model is not None:
            return model
        if self.model is not None:
            return self.model
        raise TypeError(
            "No model given: pass model='...' (the name the server knows), or construct the "
            "environment with model='...'."
        )

    # -- one rollout, end to end ----------------------------------------------------------
    async def run_rollout(
        self,
        client: Any,
        model: str,
        row: Mapping[str, Any],
        sampling_args: SamplingArgs | None = None,
        score: bool = True,
    ) -> Rollout:
        """Generate and score one rollout, filling its :class:`~verifiers.rollout.Rollout`.
        Never raises for a model, tool or reward failure: the failure is recorded in the
        record (``error``) and in its state."""
        prompt = json_copy(row["prompt"])
        answer = row.get("answer", "")
        task = row.get("task") or "default"
        info = row.get("info") or {}
        rollout_info = info
        if self.oai_tools and "oai_tools" not in info:  # verifiers 0.1.x rollouts read it there
            rollout_info = {**info, "oai_tools": self.oai_tools}
        start = time.perf_counter()
        completion: Messages = "" if isinstance(prompt, str) else []
        state: State
        try:
            coro = self.rollout(
                client, model, prompt, answer, task=task, info=rollout_info,
                sampling_args=sampling_args, example_id=row.get("example_id"),
            )
            if self.rollout_timeout:
                completion, state = await asyncio.wait_for(coro, self.rollout_timeout)
            else:
                completion, state = await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state = getattr(exc, "vf_state", None) or self.init_state(row["prompt"], answer, task, info)
            completion = state.get("completion", completion)
            if isinstance(exc, asyncio.TimeoutError | TimeoutError):
                record_error(state, "rollout_timeout", f"rollout exceeded {self.rollout_timeout} s")
            elif isinstance(exc, ModelRequestError):
                record_error(state, "model_error", str(exc), reason=exc.kind, attempts=exc.attempts)
            else:
                record_error(state, "rollout_error", f"{type(exc).__name__}: {exc}")
                self.logger.warning("rollout failed: %s: %s", type(exc).__name__, exc)
        if not isinstance(state, dict):
            raise TypeError(
                f"{type(self).__name__}.rollout must return (completion, state) with a dict "
                f"state; got {type(state).__name__}."
            )
        state["example_id"] = row.get("example_id")
        state.setdefault("timing", {})
        state["timing"]["total_s"] = time.perf_counter() - start
        turns = state.get("turns")
        if turns and not all(isinstance(t, Turn) for t in turns):  # turns an override added
            try:
                turns[:] = [Turn.from_mapping(t) for t in turns]
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"{type(self).__name__}: state['turns'] holds one record per model turn "
                    f"(what record_response adds): {exc} Keep other data under another state key."
                ) from None
        record = Rollout(
            example_id=row.get("example_id"),
            group_id=row.get("group_id"),
            rollout_index=row.get("rollout_index", 0),
            prompt=row["prompt"],
            completion=completion,
            answer=answer,
            task=task,
            info=info,
            reward=math.nan,  # not scored (score_rollouts=False) until a rubric sets it
            error=error_text(state.get("error")),
            state=state,
        )
        if score:  # through the rubric's public score_rollouts (a group of one here)
            await score_records(self.rubric, [record])
            self._drop_responses(record)
        return record

    def _drop_responses(self, record: Rollout) -> None:
        """``keep_responses=False``: the raw response objects go once the rollout is scored."""
        if not self.keep_responses:
            record.state.pop("responses", None)

    # -- many rollouts --------------------------------------------------------------------
    async def a_generate(
        self,
        inputs: Any = None,
        client: Any = None,
        model: str | None = None,
        sampling_args: SamplingArgs | None = None,
        max_concurrent: int | None = None,
        rollouts_per_example: int = 1,
        score_rollouts: bool = True,
        on_result: ResultCallback | None = None,
        skip: Iterable[tuple[Any, int]] = (),
        progress: bool | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> GenerateOutputs:
        """Run rollouts for ``inputs`` (a dataset, rows, columns with ``prompt``, or a
        ``GenerateInputs``).

        Up to ``max_concurrent`` rollouts are in flight (generation and scoring together;
        -1 or 0: no limit); with ``batch_size`` the rollouts run in consecutive batches of
        that many, each finished (generated and scored) before the next starts.
        ``on_result`` is called with each finished :class:`~verifiers.rollout.Rollout` (for
        streaming to disk); ``skip`` lists ``(example_id, rollout_index)`` pairs already done
        (resume). Rows may carry ``example_id``, ``group_id`` and ``rollout_index``; they are
        kept (``rollout_index`` when ``rollouts_per_example`` is 1). Client
        and model default to the environment's. Sampling keywords (``temperature=...``)
        may be passed directly. Results come back in input order.
        """
        model = self.resolve_model(model)
        client, model = resolve_model_client(client, model)  # a model object: served in process
        sampling_args = pop_sampling_kwargs(kwargs, sampling_args)
        if kwargs:
            raise TypeError(
                f"Unexpected arguments to generate(): {sorted(kwargs)}. Sampling arguments "
                f"it takes directly: {', '.join(SAMPLING_KEYS)}."
            )
        if rollouts_per_example < 1:
            raise ValueError(f"rollouts_per_example must be >= 1, got {rollouts_per_example}.")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 (or None), got {batch_size!r}.")
        self.merged_sampling_args(sampling_args)  # fail early on bad arguments
        client = await client_for_loop(self.resolve_client(client))
        rows = self._expand(inputs, rollouts_per_example)
        done = set(skip)
        todo = [r for r in rows if (r.get("example_id"), r["rollout_index"]) not in done]
        limit = self.max_concurrent if max_concurrent is None else max_concurrent
        gate: Any = asyncio.Semaphore(limit) if limit and limit > 0 else nullcontext()
        bar = _progress_bar(len(todo), progress)

        # each example's rollouts are scored together by rubric.score_rollouts
        scorer = GroupScorer(self.rubric, todo) if score_rollouts else None

        async def one(row: dict[str, Any]) -> Rollout:
            waiter = None
            async with gate:  # generation and scoring share the concurrency limit
                record = await self.run_rollout(client, model, row, sampling_args, score=False)
                if scorer is not None:  # the group's last rollout scores it; others wait
                    waiter = await scorer.offer(record)
            if waiter is not None:
                await asyncio.shield(waiter)
            self._drop_responses(record)
            if on_result is not None:
                on_result(record)
            if bar is not None:
                bar.update(1)
            return record

        size = batch_size or max(len(todo), 1)
        records: list[Rollout] = []
        try:
            with fewer_collections():  # rollouts allocate fast: see verifiers.utils.gc_tuning
                for begin in range(0, len(todo), size):
                    batch = [one(r) for r in todo[begin:begin + size]]
                    records += await gather_until_unreachable(batch, self.retry_policy)
        except ServerUnreachableError as exc:  # a dead server: keep what finished
            exc.records = records + list(exc.records)  # earlier batches too
            exc.results = GenerateOutputs(exc.records)
            raise
        finally:
            if bar is not None:
                bar.close()
        return GenerateOutputs(records)

    def generate(
        self,
        inputs: Any = None,
        client: Any = None,
        model: str | None = None,
        sampling_args: SamplingArgs | None = None,
        max_concurrent: int | None = None,
        n_samples: int | None = None,
        **kwargs: Any,
    ) -> GenerateOutputs:
        """Synchronous :meth:`a_generate`. Without ``inputs`` it uses the training dataset
        (the first ``n_samples`` rows when given). Extra sampling arguments such as
        ``temperature=0.8`` may be passed directly; ``batch_size=...`` runs the rollouts
        in consecutive batches."""
        sampling_args = pop_sampling_kwargs(kwargs, sampling_args)
        self.merged_sampling_args(sampling_args)  # fail early on bad arguments
        if inputs is None:
            inputs = self.get_dataset(n_samples if n_samples is not None else -1)
            if n_samples is not None and n_samples > len(inputs):
                self.logger.warning(
                    "n_samples=%d but the training dataset has %d rows: generating %d.",
                    n_samples, len(inputs), len(inputs),
                )
        elif n_samples is not None:
            inputs = _take(self._as_dataset(inputs), n_samples, None)
        return _run_in_loop(
            self.a_generate(inputs, client, model, sampling_args, max_concurrent, **kwargs),
            self.max_workers,
        )

    async def a_evaluate(
        self,
        client: Any = None,
        model: str | None = None,
        sampling_args: SamplingArgs | None = None,
        num_examples: int = -1,
        rollouts_per_example: int = 1,
        score_rollouts: bool = True,
        max_concurrent: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> GenerateOutputs:
        """:meth:`evaluate` for async code."""
        inputs = self.get_eval_dataset(num_examples, seed)
        return await self.a_generate(
            inputs, client, model, sampling_args, max_concurrent,
            rollouts_per_example=rollouts_per_example, score_rollouts=score_rollouts, **kwargs,
        )

    def evaluate(
        self,
        client: Any = None,
        model: str | None = None,
        sampling_args: SamplingArgs | None = None,
        num_examples: int = -1,
        rollouts_per_example: int = 1,
        score_rollouts: bool = True,
        max_concurrent: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> GenerateOutputs:
        """Evaluate ``model`` on the eval dataset (first ``num_examples`` rows, or a seeded
        sample with ``seed``), ``rollouts_per_example`` samples each. The positional order
        is verifiers 0.1.x's."""
        return _run_in_loop(
            self.a_evaluate(
                client, model, sampling_args, num_examples, rollouts_per_example,
                score_rollouts, max_concurrent, seed, **kwargs,
            ),
            self.max_workers,
        )

    # -- after generation -----------------------------------------------------------------
    def make_dataset(
        self,
        results: GenerateOutputs,
        push_to_hub: bool = False,
        hub_name: str | None = None,
        state_columns: Sequence[str] = (),
        **push_kwargs: Any,
    ) -> Any:
        """A ``datasets.Dataset`` of the results (prompt, completion, answer, task, reward,
        each metric, error), optionally pushed to the Hugging Face Hub as ``hub_name``."""
        from datasets import Dataset

        if push_to_hub and not hub_name:
            raise ValueError("make_dataset(push_to_hub=True) needs hub_name='user/name'.")
        columns: dict[str, list[Any]] = {
            "example_id": results["example_ids"],
            "prompt": results["prompts"],
            "completion": [plain_messages(c) for c in results["completions"]],
            "answer": [str(a) for a in results["answers"]],
            "task": results["tasks"],
            "reward": results["rewards"],
            "error": results["errors"],
        }
        for name, values in results["metrics"].items():
            columns[name] = values
        for key in state_columns:
            columns[key] = [s.get(key) for s in results["states"]]
        dataset = Dataset.from_dict(columns)
        if push_to_hub:
            dataset.push_to_hub(hub_name, **push_kwargs)
        return dataset

    def process_env_results(
        self,
        prompts: Sequence[Messages],
        completions: Sequence[Messages],
        states: Sequence[State],
        rewards: Sequence[float],
        processing_class: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Token-level training samples from rollouts; see :func:`verifiers.processing.
        process_env_results`."""
        from verifiers.processing import process_env_results

        return process_env_results(
            prompts, completions, states, rewards, processing_class,
            message_type=self.message_type, **kwargs,
        )

    # -- helpers --------------------------------------------------------------------------
    def _as_dataset(self, inputs: Any) -> Any:
        from verifiers.utils.data_utils import to_dataset

        return to_dataset(inputs)

    def _expand(self, inputs: Any, rollouts_per_example: int) -> list[dict[str, Any]]:
        if inputs is None:
            inputs = self.get_dataset()
        if hasattr(inputs, "columns") and hasattr(inputs, "model_dump"):  # GenerateInputs
            inputs = inputs.columns()
        if isinstance(inputs, Mapping) and inputs.get("completion") is not None:
            raise ValueError(
                "generate() inputs have a 'completion' column, which generation would "
                "replace. To score existing completions use env.rubric.score_rollouts(...)."
            )
        if isinstance(inputs, Mapping) and "prompts" in inputs and "prompt" not in inputs:
            inputs = {
                "prompt": inputs["prompts"],
                "answer": inputs.get("answers", [""] * len(inputs["prompts"])),
            }
        if isinstance(inputs, list) and all(isinstance(r, Mapping) and "prompt" in r for r in inputs):
            rows = [dict(r) for r in inputs]  # ready rows (a trainer's round): no Arrow round trip
        else:
            dataset = self._as_dataset(inputs)
            if "prompt" not in dataset.column_names:
                dataset = self.format_dataset(
                    dataset, self.system_prompt, self.few_shot, self.question_key, self.answer_key
                )
            rows = dataset.to_list()
        out = []
        for position, row in enumerate(rows):
            if row.get("example_id") is None:
                row["example_id"] = position
            if row.get("group_id") is None:
                row["group_id"] = row["example_id"]
            for r in range(rollouts_per_example):
                index = row.get("rollout_index", r) if rollouts_per_example == 1 else r
                out.append({**row, "rollout_index": index})
        return out


def turn_record(response: Any, message_type: MessageType) -> dict[str, Any]:
    """What the server returned for one model turn: token ids, logprobs, finish reason.

    Token ids are present when the server returns them (vLLM with ``return_token_ids``);
    logprobs when requested (``logprobs=True``). ``_message`` carries the assistant message
    (or text) back to the caller and is removed before the record is stored.
    """
    choice = response.choices[0]
    extra = getattr(response, "model_extra", None) or {}
    choice_extra = getattr(choice, "model_extra", None) or {}
    prompt_ids = extra.get("prompt_token_ids") or choice_extra.get("prompt_token_ids")
    completion_ids = choice_extra.get("token_ids")
    logprobs = None
    lp = getattr(choice, "logprobs", None)
    if lp is not None:
        if message_type == "chat" and getattr(lp, "content", None) is not None:
            logprobs = [t.logprob for t in lp.content]
        elif getattr(lp, "token_logprobs", None) is not None:
            logprobs = list(lp.token_logprobs)
    usage = getattr(response, "usage", None)
    if message_type == "chat":
        msg = choice.message
        chat_message: ChatMessage = {"role": "assistant", "content": msg.content or ""}
        if getattr(msg, "tool_calls", None):
            chat_message["tool_calls"] = [ToolCall.from_any(call) for call in msg.tool_calls]
        message: ChatMessage | str = chat_message
    else:
        message = choice.text or ""
    return {
        "prompt_token_ids": list(prompt_ids) if prompt_ids is not None else None,
        "completion_token_ids": list(completion_ids) if completion_ids is not None else None,
        "completion_logprobs": logprobs,
        "finish_reason": choice.finish_reason,
        "usage": {
            "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None),
        } if usage is not None else None,
        "_message": message,
    }


def resolve_model_client(client: Any, model: Any) -> tuple[Any, Any]:
    """``(client, model name)`` for a ``model`` given as a loaded model object rather than a
    served name (``env.rollout(model=hf_model, ...)``): the trainer package serves it in
    process (``verifiers_trainer.inference.model_client``). Names pass through unchanged."""
    if model is None or isinstance(model, str):
        return client, model
    try:
        from verifiers_trainer.inference.model_client import client_for_model
    except ImportError as exc:
        raise TypeError(
            f"model= is a {type(model).__name__} object, not the name of a served model. Serving "
            "a model object in process needs the trainer package (pip install vf-trainer, or -e trainer); or "
            "serve it (vf-vllm) and pass client=OpenAI(base_url=...) and model='<served name>'."
        ) from exc
    return client_for_model(model, client)


def _take(dataset: Any, n: int, seed: int | None) -> Any:
    if seed is not None:
        dataset = dataset.shuffle(seed=seed)
    if n is not None and 0 <= n < len(dataset):
        dataset = dataset.select(range(n))
    return dataset


def _default_client() -> Any:
    import os

    import openai

    if not os.environ.get("OPENAI_API_KEY"):
        raise TypeError(
            "No client given and OPENAI_API_KEY is not set. Pass client=OpenAI(base_url=..., "
            "api_key=...), construct the environment with client=..., or set OPENAI_API_KEY "
            "(and OPENAI_BASE_URL for a local server)."
        )
    return openai.AsyncOpenAI()


def _progress_bar(total: int, progress: bool | None) -> Any:
    if progress is False or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="rollouts", disable=None if progress is None else not progress)


def _run_in_loop(coro: Any, max_workers: int | None = None) -> Any:
    """Run a coroutine from sync code on a new event loop whose default executor (sync
    tools and reward functions) has ``max_workers`` threads; inside a running loop
    (notebooks) the new loop runs in a helper thread."""

    def run() -> Any:
        with asyncio.Runner() as runner:
            if max_workers is not None:
                executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vf-worker")
                runner.get_loop().set_default_executor(executor)
            return runner.run(coro)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = run()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="verifiers-generate")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = ["SAMPLING_KEYS", "ContextLengthError", "Environment", "turn_record"]
