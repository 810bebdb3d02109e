"""Environment: a dataset, a parser, a rubric and an interaction loop.

This base class owns what every environment shares: dataset formatting, talking to the
model (through :mod:`verifiers.clients`), running many rollouts concurrently with failures
recorded per rollout, and evaluation. Subclasses supply the interaction loop by
implementing :meth:`rollout` (``MultiTurnEnv`` does, with ``env_response`` and
``is_completed`` hooks).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from verifiers.parsers.parser import Parser
from verifiers.results import GenerateOutputs
from verifiers.rubrics.rubric import Rubric, record_error
from verifiers.types import ChatMessage, Info, Messages, MessageType, SamplingArgs, State
from verifiers.utils.data_utils import format_dataset

logger = logging.getLogger(__name__)

ResultCallback = Callable[[dict[str, Any]], Any]


class Environment(ABC):
    """Base class of all environments.

    Args:
        dataset: training rows (a ``datasets.Dataset``, a list of dicts or a dict of
            columns) with a ``prompt`` or ``question`` column and optionally ``answer``,
            ``info``, ``task``.
        eval_dataset: held-out rows, same shape; ``evaluate`` uses it when present.
        system_prompt, few_shot: prepended to prompts built from ``question``.
        parser, rubric: how completions are read and scored.
        sampling_args: defaults for every model request (``temperature``, ``max_tokens``,
            ``top_p``, ...; unknown keys go to ``extra_body``, e.g. vLLM's ``top_k``).
        message_type: ``"chat"`` (messages) or ``"completion"`` (plain text prompts).
        max_concurrent: default limit on rollouts in flight.
        retry_policy: timeouts and retries of model requests.
        rollout_timeout: seconds before a whole rollout is abandoned (recorded as failed).
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
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}. "
                "Environment arguments are: dataset, eval_dataset, system_prompt, few_shot, "
                "parser, rubric, sampling_args, message_type, max_concurrent, retry_policy, "
                "rollout_timeout, question_key, answer_key, env_id."
            )
        if message_type not in ("chat", "completion"):
            raise ValueError(f"message_type must be 'chat' or 'completion', got {message_type!r}.")
        if dataset is None and eval_dataset is None:
            raise ValueError(
                f"{type(self).__name__} needs a dataset or an eval_dataset "
                "(rows with a 'question' or 'prompt' column)."
            )
        self.message_type: MessageType = message_type
        self.system_prompt = system_prompt
        self.few_shot = list(few_shot or [])
        self.parser = parser or Parser()
        self.rubric = rubric or Rubric(parser=self.parser)
        self.sampling_args: SamplingArgs = dict(sampling_args or {})
        self.max_concurrent = max_concurrent
        self.retry_policy = retry_policy or RetryPolicy()
        self.rollout_timeout = rollout_timeout
        self.env_id = env_id
        fmt: dict[str, Any] = dict(
            system_prompt=system_prompt,
            few_shot=self.few_shot,
            message_type=message_type,
            question_key=question_key,
            answer_key=answer_key,
        )
        self.dataset = format_dataset(dataset, **fmt)
        self.eval_dataset = format_dataset(eval_dataset, **fmt)
        self.logger = logging.getLogger(f"verifiers.envs.{type(self).__name__}")

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
        return {
            "prompt": prompt,
            "completion": "" if isinstance(prompt, str) else [],
            "answer": answer,
            "task": task,
            "info": info or {},
            "turn": 0,
            "turns": [],
            "is_completed": False,
            "is_truncated": False,
            "error": None,
            "timing": {"generation_s": 0.0, "scoring_s": 0.0, "total_s": 0.0},
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            **extra,
        }

    def merged_sampling_args(self, sampling_args: SamplingArgs | None) -> SamplingArgs:
        args = {**self.sampling_args, **(sampling_args or {})}
        if args.get("n", 1) != 1:
            raise ValueError(
                "sampling_args['n'] must be 1: each rollout is one sample. "
                "Use rollouts_per_example=... for several samples per prompt."
            )
        args.pop("n", None)
        return normalize_sampling_args(args)

    async def get_model_response(
        self,
        client: Any,
        model: str,
        prompt: Messages,
        state: State,
        sampling_args: SamplingArgs | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> ChatMessage | str:
        """One model call; records the turn (token ids, logprobs, finish reason) in state.

        Returns the assistant message (chat) or the completion text. Raises
        :class:`ModelRequestError` when the request fails for good.
        """
        args = self.merged_sampling_args(sampling_args)
        start = time.perf_counter()
        try:
            if self.message_type == "chat":
                assert isinstance(prompt, list)
                response = await create_chat(
                    client, model, prompt, args, tools=tools, policy=self.retry_policy
                )
            else:
                assert isinstance(prompt, str)
                response = await create_completion(
                    client, model, prompt, args, policy=self.retry_policy
                )
        finally:
            state["timing"]["generation_s"] += time.perf_counter() - start
        turn = turn_record(response, self.message_type)
        state["turns"].append(turn)
        state["turn"] += 1
        usage = turn.get("usage") or {}
        for key in ("prompt_tokens", "completion_tokens"):
            state["usage"][key] += usage.get(key) or 0
        if turn["finish_reason"] == "length":
            state["is_truncated"] = True
        return turn.pop("_message")

    # -- one rollout, end to end ----------------------------------------------------------
    async def run_rollout(
        self,
        client: Any,
        model: str,
        row: Mapping[str, Any],
        sampling_args: SamplingArgs | None = None,
        score: bool = True,
    ) -> dict[str, Any]:
        """Generate and score one rollout. Never raises for a model, tool or reward failure:
        the failure is recorded in the returned record (``error``) and in its state."""
        prompt = copy.deepcopy(row["prompt"])
        answer = row.get("answer", "")
        task = row.get("task") or "default"
        info = row.get("info") or {}
        start = time.perf_counter()
        completion: Messages = "" if isinstance(prompt, str) else []
        state: State
        try:
            coro = self.rollout(
                client, model, prompt, answer, task=task, info=info, sampling_args=sampling_args,
                example_id=row.get("example_id"),
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
        state["example_id"] = row.get("example_id")
        scores: dict[str, float] = {}
        if score and not state.get("error"):
            scores = await self.rubric._score(
                prompt=row["prompt"], completion=completion, answer=answer, state=state,
                task=task, info=info,
            )
        state["timing"]["total_s"] = time.perf_counter() - start
        reward = 0.0 if state.get("error") else float(scores.get("reward", 0.0))
        return {
            "example_id": row.get("example_id"),
            "rollout_index": row.get("rollout_index", 0),
            "prompt": row["prompt"],
            "completion": completion,
            "answer": answer,
            "task": task,
            "info": info,
            "reward": reward,
            "metrics": {k: v for k, v in scores.items() if k != "reward"},
            "error": state.get("error"),
            "state": state,
        }

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
        **kwargs: Any,
    ) -> GenerateOutputs:
        """Run rollouts for ``inputs`` (a dataset, rows or columns with ``prompt``).

        Up to ``max_concurrent`` rollouts are in flight (generation and scoring together);
        ``on_result`` is called with each finished rollout record (for streaming to disk);
        ``skip`` lists ``(example_id, rollout_index)`` pairs already done (resume). Results
        come back in input order.
        """
        if model is None:
            raise TypeError("a_generate() needs model='...' (the name the server knows).")
        if kwargs:
            raise TypeError(f"Unexpected arguments to generate(): {sorted(kwargs)}.")
        if rollouts_per_example < 1:
            raise ValueError(f"rollouts_per_example must be >= 1, got {rollouts_per_example}.")
        client = await client_for_loop(client)
        rows = self._expand(inputs, rollouts_per_example)
        done = set(skip)
        todo = [r for r in rows if (r.get("example_id"), r["rollout_index"]) not in done]
        limit = self.max_concurrent if max_concurrent is None else max_concurrent
        gate: Any = asyncio.Semaphore(limit) if limit and limit > 0 else nullcontext()
        bar = _progress_bar(len(todo), progress)

        async def one(row: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                record = await self.run_rollout(client, model, row, sampling_args, score_rollouts)
            if on_result is not None:
                on_result(record)
            if bar is not None:
                bar.update(1)
            return record

        try:
            records = await gather_until_unreachable([one(r) for r in todo], self.retry_policy)
        except ServerUnreachableError as exc:  # a dead server: keep what finished
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
        ``temperature=0.8`` may be passed directly."""
        sampling_args = dict(sampling_args or {})
        for key in ("temperature", "top_p", "max_tokens", "top_k", "min_p", "seed", "stop"):
            if key in kwargs:
                sampling_args[key] = kwargs.pop(key)
        self.merged_sampling_args(sampling_args)  # fail early on bad arguments
        if inputs is None:
            inputs = self.get_dataset(n_samples if n_samples is not None else -1)
        elif n_samples is not None:
            inputs = _take(self._as_dataset(inputs), n_samples, None)
        if client is None:
            client = _default_client()
        return _run_in_loop(
            self.a_generate(
                inputs, client, model, sampling_args or None, max_concurrent, **kwargs
            )
        )

    async def a_evaluate(
        self,
        client: Any,
        model: str,
        num_examples: int = -1,
        rollouts_per_example: int = 1,
        max_concurrent: int | None = None,
        sampling_args: SamplingArgs | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> GenerateOutputs:
        inputs = self.get_eval_dataset(num_examples, seed)
        return await self.a_generate(
            inputs, client, model, sampling_args, max_concurrent,
            rollouts_per_example=rollouts_per_example, **kwargs,
        )

    def evaluate(
        self,
        client: Any,
        model: str,
        num_examples: int = -1,
        rollouts_per_example: int = 1,
        max_concurrent: int | None = None,
        sampling_args: SamplingArgs | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> GenerateOutputs:
        """Evaluate ``model`` on the eval dataset (first ``num_examples`` rows, or a seeded
        sample with ``seed``), ``rollouts_per_example`` samples each."""
        return _run_in_loop(
            self.a_evaluate(
                client, model, num_examples, rollouts_per_example, max_concurrent,
                sampling_args, seed, **kwargs,
            )
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
            "completion": results["completions"],
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
                dataset = format_dataset(
                    dataset, self.system_prompt, self.few_shot, self.message_type
                )
            rows = dataset.to_list()
        out = []
        for index, row in enumerate(rows):
            if row.get("example_id") is None:
                row["example_id"] = index
            for r in range(rollouts_per_example):
                out.append({**row, "rollout_index": r})
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
            chat_message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
                for call in msg.tool_calls
            ]
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


def _take(dataset: Any, n: int, seed: int | None) -> Any:
    if seed is not None:
        dataset = dataset.shuffle(seed=seed)
    if n is not None and 0 <= n < len(dataset):
        dataset = dataset.select(range(n))
    return dataset


def _default_client() -> Any:
    import openai

    return openai.AsyncOpenAI()


def _progress_bar(total: int, progress: bool | None) -> Any:
    if progress is False or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="rollouts", disable=None if progress is None else not progress)


def _run_in_loop(coro: Any) -> Any:
    """Run a coroutine from sync code; inside a running loop (notebooks) use a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="verifiers-generate")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = ["ContextLengthError", "Environment", "turn_record"]
