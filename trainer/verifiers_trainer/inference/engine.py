"""InProcessEngine: a transformers model behind the OpenAI-compatible async client interface.

Environments talk to it exactly as to a vLLM server (``engine.chat.completions.create``,
``engine.completions.create``), and get real ``openai`` response objects back, with vLLM's
extras: ``prompt_token_ids`` (top level) and ``token_ids`` (per choice) when
``return_token_ids`` is requested, and raw sampler logprobs (log-softmax of the model's
unprocessed logits at each sampled token, as vLLM returns by default).

Requests that arrive together are batched: each goes into a per-event-loop queue; one
worker task collects up to ``max_batch_size`` of them (waiting ``batch_wait_ms`` for
stragglers) and runs them as one left-padded batch with a KV cache. Requests in a batch may
use different sampling settings (they are applied per row). The event loop stays free while
a batch runs: on a GPU the batch runs in a worker thread (``asyncio.to_thread``); on CPU it
runs in the loop's own thread one decoding step at a time, yielding to the loop after each,
because torch on CPU slows down 4-7x once two threads use it (see ``generate_in_thread``).

Generation always uses the model's current weights: the engine holds the trainer's model
itself (no copy), takes ``engine.lock`` for each batch (a trainer can take it too), switches
to eval mode, computes under ``torch.inference_mode`` and restores train mode after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
import uuid
import weakref
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: Request keys accepted and ignored (transport and bookkeeping options).
IGNORED_KEYS = frozenset({
    "timeout", "extra_headers", "extra_query", "user", "metadata", "store", "service_tier",
    "parallel_tool_calls", "prompt_cache_key", "safety_identifier", "stream_options",
    "model", "request_id", "priority",
})
_warned_keys: set[str] = set()

TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)


# ------------------------------------------------------------------------------------------
# Requests and results
# ------------------------------------------------------------------------------------------


@dataclass
class SamplingParams:
    """Per-request sampling settings (OpenAI names, plus vLLM's extras)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0
    skip_special_tokens: bool = True
    top_logprobs: int = 0  # top alternatives to return per token


@dataclass
class Generation:
    """One finished sequence: the sampled ids, their raw logprobs, the text."""

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str  # "stop" or "length"
    stop_reason: str | int | None = None  # the stop string or stop token id that ended it
    top_logprobs: list[list[tuple[int, float]]] | None = None


@dataclass
class EngineStats:
    """Counters since the engine was made: ``batches`` is the number of batched generate
    calls, so ``requests / batches`` is the mean batch size."""

    requests: int = 0
    batches: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    largest_batch: int = 0
    generate_seconds: float = 0.0


@dataclass
class _Request:
    prompt_ids: list[int]
    params: SamplingParams
    future: asyncio.Future[Generation]


@dataclass
class _LoopState:
    queue: asyncio.Queue[_Request]
    worker: asyncio.Task[None] | None = None


def bad_request(message: str) -> Exception:
    """An ``openai.BadRequestError`` (HTTP 400: not retried by the core's retry policy)."""
    import openai

    try:  # the HTTP library the installed openai is built on (newer releases: httpx2)
        import httpx2 as httpx
    except ImportError:
        import httpx

    request = httpx.Request("POST", "http://in-process-engine/v1")
    response = httpx.Response(400, request=request)
    body = {"message": message, "type": "BadRequestError", "code": 400}
    return openai.BadRequestError(message, response=response, body=body)


# ------------------------------------------------------------------------------------------
# The engine
# ------------------------------------------------------------------------------------------


class InProcessEngine:
    """A transformers causal LM served through the OpenAI async client interface.

    ::

        engine = InProcessEngine(model, tokenizer)
        results = env.evaluate(engine, "local", sampling_args={
            "temperature": 1.0, "max_tokens": 256, "logprobs": True, "return_token_ids": True})

    Args:
        model: a ``PreTrainedModel`` (or PEFT model); used as is, never copied.
        tokenizer: its tokenizer (with a chat template for chat requests).
        max_batch_size: most requests generated together.
        batch_wait_ms: how long the worker waits for more requests after the first.
        model_name: the name ``models.list()`` reports.
        max_model_len: context window; default ``config.max_position_embeddings``. Prompts
            that do not fit are refused with vLLM's "maximum context length" error, and
            ``max_tokens`` is capped to what fits.
        generate_in_thread: run each batch in a worker thread (``asyncio.to_thread``) rather
            than in the event loop's thread, stepping and yielding to the loop after every
            token. Default: a thread for GPU models, the loop's thread on CPU. On CPU, torch
            used from two threads runs 4-7x slower (each thread gets its own OpenMP pool and
            the idle pool's spinning workers take the cores), and a trainer computes in the
            loop's thread; on a GPU the thread keeps kernel waits off the loop.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_batch_size: int = 32,
        batch_wait_ms: float = 2.0,
        model_name: str = "local",
        max_model_len: int | None = None,
        generate_in_thread: bool | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}.")
        if batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {batch_wait_ms}.")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_ms / 1000.0
        self.model_name = model_name
        self.generate_in_thread = generate_in_thread
        config = getattr(model, "config", None)
        self.max_model_len = max_model_len or getattr(config, "max_position_embeddings", None)
        self.lock = threading.RLock()
        self.stats = EngineStats()
        self.eos_token_ids = _eos_token_ids(model, tokenizer)
        self.vocab_size = _vocab_size(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (sorted(self.eos_token_ids) or [0])[0]
        self.chat = _Chat(self)
        self.completions = _Completions(self)
        self.models = _Models(self)
        self._loops: weakref.WeakKeyDictionary[Any, _LoopState] = weakref.WeakKeyDictionary()
        self._token_text: dict[int, str] = {}
        self._rng: Any = None
        self._logits_to_keep = True

    # -- sampling state (for exact resume) ---------------------------------------------
    def get_rng_state(self) -> Any:
        """The state of the generator used for unseeded requests (``None`` before first use)."""
        return None if self._rng is None else self._rng.get_state()

    def set_rng_state(self, state: Any) -> None:
        """Restore :meth:`get_rng_state`; ``None`` re-seeds from torch's global RNG on first use."""
        import torch

        if state is None:
            self._rng = None
            return
        rng = torch.Generator(device=self.model.device)
        rng.set_state(state)
        self._rng = rng

    # -- async submission and the batching worker -----------------------------------------
    async def generate(self, prompt_ids: Sequence[int], params: SamplingParams) -> Generation:
        """Queue one prompt (token ids) for generation and wait for its result."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None or state.worker is None or state.worker.done():
            state = _LoopState(queue=asyncio.Queue())
            state.worker = loop.create_task(self._worker(state.queue))
            self._loops[loop] = state
        future: asyncio.Future[Generation] = loop.create_future()
        state.queue.put_nowait(_Request(list(prompt_ids), params, future))
        return await future

    async def _worker(self, queue: asyncio.Queue[_Request]) -> None:
        while True:
            batch = [await queue.get()]
            if self.batch_wait_s > 0 and queue.qsize() < self.max_batch_size - 1:
                await asyncio.sleep(self.batch_wait_s)
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            batch = [r for r in batch if not r.future.done()]  # cancelled while queued
            if not batch:
                continue
            prompts, params = [r.prompt_ids for r in batch], [r.params for r in batch]
            try:
                if self._in_thread():
                    results = await asyncio.to_thread(self.generate_batch, prompts, params)
                else:
                    results = await self._generate_cooperatively(prompts, params)
            except asyncio.CancelledError:
                for r in batch:
                    r.future.cancel()
                raise
            except Exception as exc:
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)
                continue
            for r, result in zip(batch, results, strict=True):
                if not r.future.done():
                    r.future.set_result(result)

    def _in_thread(self) -> bool:
        if self.generate_in_thread is not None:
            return self.generate_in_thread
        return self.model.get_input_embeddings().weight.device.type != "cpu"

    async def close(self) -> None:
        """Stop this event loop's worker (it also ends with its loop)."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is not None and state.worker is not None:
            state.worker.cancel()

    # -- batched generation ----------------------------------------------------------------
    def generate_batch(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> list[Generation]:
        """Generate for several prompts (token ids) together with the current weights
        (synchronously, in the calling thread, holding ``lock``)."""
        if len(prompts) != len(params):
            raise ValueError("generate_batch needs one SamplingParams per prompt.")
        if not prompts:
            return []
        with self.lock, self._generating(prompts) as box:
            steps = self._steps(prompts, params)
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    box.extend(done.value)
                    return done.value

    async def _generate_cooperatively(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> list[Generation]:
        """:meth:`generate_batch` in the event loop's own thread, yielding to the loop after
        every decoding step (so the loop stays responsive and torch runs in one thread)."""
        while not self.lock.acquire(blocking=False):  # a trainer thread holds it
            await asyncio.sleep(0.001)
        try:
            with self._generating(prompts) as box:
                steps = self._steps(prompts, params)
                while True:
                    try:
                        next(steps)
                    except StopIteration as done:
                        box.extend(done.value)
                        return done.value
                    await asyncio.sleep(0)
        finally:
            self.lock.release()

    @contextlib.contextmanager
    def _generating(self, prompts: Sequence[Sequence[int]]) -> Iterator[list[Generation]]:
        """Eval mode for the duration (train mode restored after); counts into ``stats``."""
        start = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        results: list[Generation] = []
        try:
            yield results
        finally:
            if was_training:
                self.model.train()
        stats = self.stats
        stats.batches += 1
        stats.requests += len(prompts)
        stats.largest_batch = max(stats.largest_batch, len(prompts))
        stats.prompt_tokens += sum(len(p) for p in prompts)
        stats.completion_tokens += sum(len(r.token_ids) for r in results)
        stats.generate_seconds += time.perf_counter() - start

    def _steps(
        self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]
    ) -> Generator[None, None, list[Generation]]:
        """The decoding loop as a generator: yields after the prefill and after each step
        (never inside ``torch.inference_mode``, so other code can run in between) and
        returns the generations."""
        import torch

        device = self.model.get_input_embeddings().weight.device
        batch = len(prompts)
        width = max(len(p) for p in prompts)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            if prompt:
                input_ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
                mask[row, width - len(prompt):] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        sampler = _Sampler(self, prompts, params, device)

        with torch.inference_mode():
            out = self._forward(input_ids, mask, positions, None)
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
            next_positions = positions[:, -1] + 1
        active = list(range(batch))  # original row of each current batch row
        outputs: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        tops: list[list[list[tuple[int, float]]]] = [[] for _ in prompts]
        finish: list[tuple[str, str | int | None, int | None]] = [("length", None, None)] * batch
        max_top = max(p.top_logprobs for p in params)
        yield
        while True:
            with torch.inference_mode():
                raw = torch.log_softmax(logits, dim=-1)  # raw logprobs, before any processing
                chosen = sampler.sample(logits, active, [len(outputs[i]) for i in active])
                chosen_lp = raw.gather(1, chosen[:, None]).squeeze(1).tolist()
                chosen_ids = chosen.tolist()
                top = raw.topk(max_top, dim=-1) if max_top else None
                keep: list[int] = []
                for j, row in enumerate(active):
                    token = chosen_ids[j]
                    outputs[row].append(token)
                    logprobs[row].append(chosen_lp[j])
                    if top is not None:
                        k = params[row].top_logprobs
                        tops[row].append(list(zip(top.indices[j, :k].tolist(),
                                                  top.values[j, :k].tolist(), strict=True)))
                    done = self._finished(outputs[row], params[row])
                    if done is None:
                        keep.append(j)
                    else:
                        finish[row] = done
                if not keep:
                    break
                if len(keep) < len(active):  # drop finished rows from the batch
                    index = torch.tensor(keep, device=device)
                    cache.reorder_cache(index)
                    chosen, mask = chosen[index], mask[index]
                    next_positions = next_positions[index]
                    sampler.select(keep)
                    active = [active[j] for j in keep]
                sampler.observe(chosen)
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                out = self._forward(chosen[:, None], mask, next_positions[:, None], cache)
                cache = out.past_key_values
                logits = out.logits[:, -1, :].float()
                next_positions = next_positions + 1
            yield

        results = []
        for row, ids in enumerate(outputs):
            reason, stop_reason, cut = finish[row]
            p = params[row]
            text_ids = ids[:-1] if isinstance(stop_reason, int) else ids
            text = self.tokenizer.decode(text_ids, skip_special_tokens=p.skip_special_tokens)
            if cut is not None:
                text = text[:cut]
            results.append(Generation(
                token_ids=ids, logprobs=logprobs[row], text=text, finish_reason=reason,
                stop_reason=stop_reason, top_logprobs=tops[row] if p.top_logprobs else None,
            ))
        return results

    def _forward(self, input_ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        kwargs: dict[str, Any] = dict(
            input_ids=input_ids, attention_mask=mask, position_ids=positions,
            past_key_values=cache, use_cache=True,
        )
        if self._logits_to_keep:
            try:
                return self.model(**kwargs, logits_to_keep=1)
            except TypeError:  # a model without logits_to_keep
                self._logits_to_keep = False
        return self.model(**kwargs)

    def _finished(
        self, ids: list[int], p: SamplingParams
    ) -> tuple[str, str | int | None, int | None] | None:
        """``(finish_reason, stop_reason, text cut)`` when the sequence is done, else None."""
        token = ids[-1]
        if len(ids) >= p.min_tokens:
            if token in p.stop_token_ids or (not p.ignore_eos and token in self.eos_token_ids):
                return "stop", token, None
            if p.stop:
                text = self.tokenizer.decode(ids, skip_special_tokens=p.skip_special_tokens)
                hits = [(text.find(s), s) for s in p.stop]
                hits = [(i, s) for i, s in hits if i >= 0]
                if hits:
                    at, stop = min(hits)
                    return "stop", stop, at + len(stop) if p.include_stop_str_in_output else at
        if len(ids) >= p.max_tokens:
            return "length", None, None
        return None

    # -- requests -> prompts and responses -------------------------------------------------
    def chat_prompt_ids(
        self,
        messages: Sequence[Any],
        tools: Sequence[Any] | None = None,
        **template_kwargs: Any,
    ) -> list[int]:
        """The prompt token ids of a chat request: the chat template rendered, then
        tokenized without extra special tokens (what ``apply_chat_template`` gives)."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise bad_request(
                "The tokenizer has no chat template, so chat requests cannot be rendered; set "
                "tokenizer.chat_template or use completions.create with a text prompt."
            )
        template_kwargs.setdefault("add_generation_prompt", True)
        if template_kwargs.get("continue_final_message"):
            template_kwargs["add_generation_prompt"] = False
        try:
            text = self.tokenizer.apply_chat_template(
                [_plain_message(m) for m in messages], tools=list(tools) if tools else None,
                tokenize=False, **template_kwargs,
            )
        except Exception as exc:
            raise bad_request(f"The chat template failed on these messages: {exc}") from exc
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def sampling_params(self, request: dict[str, Any], prompt_len: int, chat: bool) -> SamplingParams:
        """Validated :class:`SamplingParams` from request keys (``extra_body`` merged)."""
        r = request
        if prompt_len < 1:
            raise bad_request("The prompt is empty: it needs at least one token.")
        max_tokens = r.get("max_completion_tokens") if chat else None
        if max_tokens is None:
            max_tokens = r.get("max_tokens")
        if self.max_model_len is not None:
            room = self.max_model_len - prompt_len
            if room < 1:
                raise bad_request(
                    f"This model's maximum context length is {self.max_model_len} tokens. "
                    f"However, your request has {prompt_len} input tokens. Please reduce the "
                    "length of the input messages."
                )
            max_tokens = room if max_tokens is None else min(int(max_tokens), room)
        elif max_tokens is None:
            raise bad_request("max_tokens is required: the model has no known context length.")
        if int(max_tokens) < 1:
            raise bad_request(f"max_tokens must be at least 1, got {max_tokens}.")
        temperature = 1.0 if r.get("temperature") is None else float(r["temperature"])
        top_p = 1.0 if r.get("top_p") is None else float(r["top_p"])
        top_k = int(r.get("top_k") or 0)
        min_p = float(r.get("min_p") or 0.0)
        repetition_penalty = float(r.get("repetition_penalty") or 1.0)
        checks = [
            (temperature >= 0, f"temperature must be >= 0, got {temperature}."),
            (0 < top_p <= 1, f"top_p must be in (0, 1], got {top_p}."),
            (top_k >= -1, f"top_k must be -1 or 0 (off) or a positive count, got {top_k}."),
            (0 <= min_p <= 1, f"min_p must be in [0, 1], got {min_p}."),
            (repetition_penalty > 0, f"repetition_penalty must be > 0, got {repetition_penalty}."),
        ]
        for ok, message in checks:
            if not ok:
                raise bad_request(message)
        stop = r.get("stop")
        stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
        if chat:
            want = bool(r.get("logprobs"))
            top = int(r.get("top_logprobs") or 0) if want else 0
        else:
            value = r.get("logprobs")  # legacy: the number of alternatives, or None
            want = value is not None and value is not False
            top = 0 if value is None or isinstance(value, bool) else int(value)
        if not 0 <= top <= 20:
            raise bad_request(f"top_logprobs must be between 0 and 20, got {top}.")
        bias = {int(k): float(v) for k, v in (r.get("logit_bias") or {}).items()}
        stop_token_ids = [int(t) for t in r.get("stop_token_ids") or []]
        outside = [t for t in [*bias, *stop_token_ids] if not 0 <= t < self.vocab_size]
        if outside:
            raise bad_request(
                f"Token ids {outside} in logit_bias / stop_token_ids are outside the "
                f"vocabulary (0..{self.vocab_size - 1})."
            )
        return SamplingParams(
            max_tokens=int(max_tokens), temperature=temperature, top_p=top_p,
            top_k=max(top_k, 0), min_p=min_p, repetition_penalty=repetition_penalty,
            presence_penalty=float(r.get("presence_penalty") or 0.0),
            frequency_penalty=float(r.get("frequency_penalty") or 0.0),
            logit_bias=bias, seed=None if r.get("seed") is None else int(r["seed"]),
            stop=stops, stop_token_ids=stop_token_ids,
            include_stop_str_in_output=bool(r.get("include_stop_str_in_output")),
            ignore_eos=bool(r.get("ignore_eos")), min_tokens=int(r.get("min_tokens") or 0),
            skip_special_tokens=r.get("skip_special_tokens", True) is not False,
            top_logprobs=top,
        )

    def token_text(self, token_id: int) -> str:
        """The text of one token (cached)."""
        text = self._token_text.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id])
            self._token_text[token_id] = text
        return text

    def _logprob_entry(self, token_id: int, logprob: float) -> dict[str, Any]:
        text = self.token_text(token_id)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


# ------------------------------------------------------------------------------------------
# Sampling (per row: requests with different settings share a batch)
# ------------------------------------------------------------------------------------------


class _Sampler:
    """Turns raw next-token logits into chosen tokens, row by row: penalties, logit bias,
    min_tokens, then greedy (temperature 0) or temperature / top-k / top-p / min-p
    sampling, with a private generator per seeded request."""

    def __init__(self, engine: InProcessEngine, prompts: Sequence[Sequence[int]],
                 params: Sequence[SamplingParams], device: Any) -> None:
        import torch

        self.engine = engine
        self.prompts = prompts
        self.params = list(params)
        self.device = device
        self.want_seen = any(p.repetition_penalty != 1.0 for p in params)
        self.want_counts = any(p.presence_penalty or p.frequency_penalty for p in params)
        self.seen: Any = None  # [rows, vocab] bool: prompt + output tokens (repetition)
        self.counts: Any = None  # [rows, vocab] float: output token counts (presence, freq.)
        self.generators: dict[int, Any] = {}
        for row, p in enumerate(params):
            if p.seed is not None and p.temperature > 0:
                self.generators[row] = torch.Generator(device=device).manual_seed(p.seed)

    def _allocate(self, vocab: int) -> None:
        import torch

        rows = len(self.params)
        if self.want_seen:
            self.seen = torch.zeros((rows, vocab), dtype=torch.bool, device=self.device)
            for row, prompt in enumerate(self.prompts):
                self.seen[row, list(prompt)] = True
        if self.want_counts:
            self.counts = torch.zeros((rows, vocab), dtype=torch.float32, device=self.device)
        self.want_seen = self.want_counts = False

    def select(self, keep: list[int]) -> None:
        """Keep only these current rows (the others finished)."""
        if self.seen is not None:
            self.seen = self.seen[keep]
        if self.counts is not None:
            self.counts = self.counts[keep]

    def observe(self, chosen: Any) -> None:
        """Record the tokens just chosen by the current rows."""
        if self.seen is not None:
            self.seen[range(len(chosen)), chosen] = True
        if self.counts is not None:
            self.counts[range(len(chosen)), chosen] += 1.0

    def _column(self, values: list[float]) -> Any:
        import torch

        return torch.tensor(values, dtype=torch.float32, device=self.device)[:, None]

    def sample(self, logits: Any, active: list[int], lengths: list[int]) -> Any:
        """One token per current row; ``active`` maps current rows to original rows and
        ``lengths`` counts the tokens each has generated so far."""
        import torch

        if self.want_seen or self.want_counts:
            self._allocate(logits.shape[-1])
        params = [self.params[i] for i in active]
        if self.seen is not None:
            penalty = self._column([p.repetition_penalty for p in params])
            penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
            logits = torch.where(self.seen, penalised, logits)
        if self.counts is not None:
            frequency = self._column([p.frequency_penalty for p in params])
            presence = self._column([p.presence_penalty for p in params])
            logits = logits - frequency * self.counts - presence * (self.counts > 0)
        blocked = [j for j, p in enumerate(params) if lengths[j] < p.min_tokens and not p.ignore_eos]
        if any(p.logit_bias for p in params) or blocked:
            logits = logits.clone()
            for j, p in enumerate(params):
                for token, bias in p.logit_bias.items():
                    logits[j, token] += bias
            eos = sorted(self.engine.eos_token_ids)
            for j in blocked:
                logits[j, eos] = float("-inf")
        chosen = torch.empty(len(params), dtype=torch.long, device=logits.device)
        greedy = [j for j, p in enumerate(params) if p.temperature == 0]
        sampled = [j for j, p in enumerate(params) if p.temperature > 0]
        if greedy:
            chosen[greedy] = logits[greedy].argmax(dim=-1)
        if sampled:
            probs = self._probabilities(logits[sampled], [params[j] for j in sampled])
            unseeded = []
            for k, j in enumerate(sampled):
                generator = self.generators.get(active[j])
                if generator is None:
                    unseeded.append(k)
                else:
                    chosen[j] = torch.multinomial(probs[k], 1, generator=generator)[0]
            if unseeded:
                draws = torch.multinomial(probs[unseeded], 1, generator=self._rng()).squeeze(1)
                chosen[[sampled[k] for k in unseeded]] = draws
        return chosen

    def _probabilities(self, logits: Any, params: list[SamplingParams]) -> Any:
        import torch

        logits = logits / self._column([p.temperature for p in params])
        vocab = logits.shape[-1]
        if any(p.top_k or p.top_p < 1.0 for p in params):
            ordered, order = logits.sort(dim=-1, descending=True)
            ks = torch.tensor([p.top_k if 0 < p.top_k < vocab else vocab for p in params],
                              device=logits.device)
            ranks = torch.arange(vocab, device=logits.device)[None, :]
            ordered = ordered.masked_fill(ranks >= ks[:, None], float("-inf"))
            probs = ordered.softmax(dim=-1)
            before = probs.cumsum(dim=-1) - probs  # mass of the better tokens
            ordered = ordered.masked_fill(before > self._column([p.top_p for p in params]),
                                          float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(1, order, ordered)
        probs = logits.softmax(dim=-1)
        if any(p.min_p > 0 for p in params):
            floor = self._column([p.min_p for p in params]) * probs.max(dim=-1, keepdim=True).values
            probs = torch.where(probs < floor, torch.zeros_like(probs), probs)
        return probs

    def _rng(self) -> Any:
        """The engine's own generator for unseeded requests: seeded once from torch's global
        RNG (so ``torch.manual_seed`` makes runs repeatable), then independent of it, so
        sampling does not shift the trainer's random stream."""
        import torch

        rng = self.engine._rng
        if rng is None or rng.device != torch.device(self.device):
            seed = int(torch.randint(0, 2**62, (1,)).item())
            rng = torch.Generator(device=self.device).manual_seed(seed)
            self.engine._rng = rng
        return rng


# ------------------------------------------------------------------------------------------
# The OpenAI-shaped namespaces
# ------------------------------------------------------------------------------------------


def _request_kwargs(kwargs: dict[str, Any], api: str) -> dict[str, Any]:
    """Flatten ``extra_body`` into the request (top-level keys win); refuse what the engine
    cannot do; warn once about unknown keys."""
    extra = kwargs.pop("extra_body", None) or {}
    request = {**extra, **kwargs}
    if request.get("stream"):
        raise bad_request("stream=True is not supported by InProcessEngine; leave it off.")
    n = request.get("n")
    if n is not None and int(n) != 1:
        raise bad_request(
            f"n={n} is not supported by InProcessEngine (one sample per request); send "
            "several requests instead (they are batched together)."
        )
    if api == "completions":
        if request.get("echo"):
            raise bad_request("echo=True is not supported by InProcessEngine.")
        if request.get("best_of") not in (None, 1):
            raise bad_request("best_of is not supported by InProcessEngine.")
    known = set(SamplingParams.__dataclass_fields__) | IGNORED_KEYS | {
        "max_completion_tokens", "logprobs", "n", "stream", "return_token_ids",
        "chat_template_kwargs", "add_generation_prompt", "continue_final_message",
        "tool_choice", "echo", "best_of", "messages", "prompt", "tools",
    }
    for key in request:
        if key not in known and key not in _warned_keys:
            _warned_keys.add(key)
            logger.warning("InProcessEngine ignores the request option %r.", key)
    return request


class _ChatCompletions:
    def __init__(self, engine: InProcessEngine) -> None:
        self._engine = engine

    async def create(self, *, model: str, messages: Sequence[Any],
                     tools: Sequence[Any] | None = None, **kwargs: Any) -> Any:
        """OpenAI ``chat.completions.create`` (``n=1``, no streaming)."""
        from openai.types.chat import ChatCompletion

        engine = self._engine
        request = _request_kwargs(kwargs, "chat")
        template_kwargs = dict(request.get("chat_template_kwargs") or {})
        for key in ("add_generation_prompt", "continue_final_message"):
            if key in request:
                template_kwargs[key] = request[key]
        prompt_ids = engine.chat_prompt_ids(messages, tools, **template_kwargs)
        params = engine.sampling_params(request, len(prompt_ids), chat=True)
        gen = await engine.generate(prompt_ids, params)

        content: str | None = gen.text
        calls: list[dict[str, Any]] = []
        if tools and request.get("tool_choice") != "none":
            content, calls = parse_tool_calls(gen.text)
        finish = "tool_calls" if calls and gen.finish_reason == "stop" else gen.finish_reason
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content if (content or not calls) else None,
                        "tool_calls": calls or None, "refusal": None},
            "finish_reason": finish,
            "logprobs": None,
            "stop_reason": gen.stop_reason,
        }
        if params.top_logprobs or request.get("logprobs"):
            entries = []
            for i, (token, logprob) in enumerate(zip(gen.token_ids, gen.logprobs, strict=True)):
                entry = engine._logprob_entry(token, logprob)
                alternatives = gen.top_logprobs[i] if gen.top_logprobs else []
                entry["top_logprobs"] = [engine._logprob_entry(t, lp) for t, lp in alternatives]
                entries.append(entry)
            choice["logprobs"] = {"content": entries, "refusal": None}
        body: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": _usage(len(prompt_ids), len(gen.token_ids)),
        }
        if request.get("return_token_ids"):
            choice["token_ids"] = gen.token_ids
            body["prompt_token_ids"] = prompt_ids
        return ChatCompletion.model_validate(body)


class _Chat:
    def __init__(self, engine: InProcessEngine) -> None:
        self.completions = _ChatCompletions(engine)


class _Completions:
    def __init__(self, engine: InProcessEngine) -> None:
        self._engine = engine

    async def create(self, *, model: str, prompt: Any, **kwargs: Any) -> Any:
        """OpenAI (legacy) ``completions.create``: ``prompt`` is a string, a list of strings,
        token ids or a list of token-id lists (one choice per prompt)."""
        from openai.types import Completion

        engine = self._engine
        request = _request_kwargs(kwargs, "completions")
        prompts = _prompt_ids(engine.tokenizer, prompt)
        params = [engine.sampling_params(request, len(p), chat=False) for p in prompts]
        gens = await asyncio.gather(*(engine.generate(p, s) for p, s in zip(prompts, params,
                                                                             strict=True)))
        choices = []
        for index, gen in enumerate(gens):
            choice: dict[str, Any] = {"index": index, "text": gen.text,
                                      "finish_reason": gen.finish_reason, "logprobs": None,
                                      "stop_reason": gen.stop_reason}
            value = request.get("logprobs")
            if value is not None and value is not False:
                tokens = [engine.token_text(t) for t in gen.token_ids]
                offsets, at = [], 0
                for text in tokens:
                    offsets.append(at)
                    at += len(text)
                top = None
                if gen.top_logprobs is not None:
                    top = [{engine.token_text(t): lp for t, lp in alts}
                           for alts in gen.top_logprobs]
                choice["logprobs"] = {"tokens": tokens, "token_logprobs": gen.logprobs,
                                      "top_logprobs": top, "text_offset": offsets}
            if request.get("return_token_ids"):
                choice["prompt_token_ids"] = prompts[index]
                choice["token_ids"] = gen.token_ids
            choices.append(choice)
        body: dict[str, Any] = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": _usage(sum(len(p) for p in prompts), sum(len(g.token_ids) for g in gens)),
        }
        if request.get("return_token_ids"):
            body["prompt_token_ids"] = prompts[0]
        return Completion.model_validate(body)


class _Models:
    def __init__(self, engine: InProcessEngine) -> None:
        self._engine = engine

    async def list(self) -> Any:
        """The one model this engine serves."""
        from openai.pagination import SyncPage
        from openai.types import Model

        model = Model(id=self._engine.model_name, created=0, object="model",
                      owned_by="verifiers")
        return SyncPage[Model](data=[model], object="list")


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Split Hermes/Qwen-style ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``
    blocks out of ``text``: ``(remaining content, OpenAI tool calls)``. Blocks that are not
    a JSON object with a ``name`` stay in the content, as vLLM's hermes parser does."""
    calls: list[dict[str, Any]] = []
    pieces: list[str] = []
    position = 0
    for match in TOOL_CALL_RE.finditer(text):
        try:
            call = json.loads(match.group(1))
        except ValueError:
            continue
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            continue
        arguments = call.get("arguments", call.get("parameters", {}))
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append({
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": arguments},
        })
        pieces.append(text[position:match.start()])
        position = match.end()
    if not calls:
        return text, []
    pieces.append(text[position:])
    return "".join(pieces).strip(), calls


def _plain_message(message: Any) -> dict[str, Any]:
    """A message as a plain dict (pydantic objects dumped), content never None."""
    if hasattr(message, "model_dump"):
        message = message.model_dump(exclude_none=True)
    message = dict(message)
    if message.get("content") is None:
        message["content"] = ""
    return message


def _prompt_ids(tokenizer: Any, prompt: Any) -> list[list[int]]:
    if isinstance(prompt, str):
        return [list(tokenizer(prompt)["input_ids"])]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(t, int) for t in prompt):
            return [list(prompt)]
        if all(isinstance(p, str) for p in prompt):
            return [list(ids) for ids in tokenizer(prompt)["input_ids"]]
        if all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt):
            return [list(p) for p in prompt]
    raise bad_request(
        "prompt must be a string, a list of strings, a list of token ids or a list of "
        f"token-id lists; got {type(prompt).__name__}."
    )


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _vocab_size(model: Any, tokenizer: Any) -> int:
    """Rows of the output layer (what logits index), else the config's or tokenizer's."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if weight is not None:  # ZeRO-3 keeps the whole shape of a sharded weight in ds_shape
        return int(getattr(weight, "ds_shape", weight.shape)[0])
    return int(getattr(getattr(model, "config", None), "vocab_size", None) or len(tokenizer))


def _eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Tokens that end a sequence: the generation config's eos ids, the tokenizer's eos and
    pad tokens."""
    ids: set[int] = set()
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(int(t) for t in eos)
    for token_id in (tokenizer.eos_token_id, tokenizer.pad_token_id):
        if token_id is not None:
            ids.add(int(token_id))
    return ids


__all__ = ["EngineStats", "Generation", "InProcessEngine", "SamplingParams", "parse_tool_calls"]
