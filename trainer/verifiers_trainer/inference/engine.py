"""InProcessEngine: a transformers model behind the OpenAI-compatible async client interface.

Environments talk to it exactly as to a vLLM server (``engine.chat.completions.create``,
``engine.completions.create``), and get real ``openai`` response objects back, with vLLM's
extras: ``prompt_token_ids`` (top level) and ``token_ids`` (per choice) when
``return_token_ids`` is requested, and raw sampler logprobs (log-softmax of the model's
unprocessed logits at each sampled token, as vLLM returns by default).

Requests that arrive together are batched: each goes into a per-event-loop queue; one
worker task collects up to ``max_batch_size`` of them (waiting ``batch_wait_ms`` for
stragglers) and runs them as one left-padded batch with a KV cache. Identical prompts in a
batch (a GRPO group) are computed once and their cache rows copied. Requests in a batch may
use different sampling settings (they are applied per row). On CPU the fp32 linear layers of
decoding steps run as blocked ``bmm`` products (``cpu_decode``), about twice as fast. The
event loop stays free while a batch runs: on a GPU the batch runs in a worker thread
(``asyncio.to_thread``); on CPU it runs in the loop's own thread one decoding step at a time,
yielding to the loop after each, because torch on CPU slows down 4-7x once two threads use
it (see ``generate_in_thread``).

Generation always uses the model's current weights: the engine holds the trainer's model
itself (no copy), takes ``engine.lock`` for each batch (a trainer can take it too), switches
to eval mode, computes under ``torch.inference_mode`` and restores train mode after.

Next to it: ``sampler`` (sampling settings, token choice, stop rules), ``openai_client`` (the
OpenAI-shaped namespaces: requests in, responses out) and ``tool_calls`` (tool-call parsing).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
import weakref
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from verifiers_trainer.inference import openai_client
from verifiers_trainer.inference.cpu_decode import fast_decode_linears
from verifiers_trainer.inference.sampler import Sampler, SamplingParams, finished
from verifiers_trainer.inference.tool_calls import parse_tool_calls

# ------------------------------------------------------------------------------------------
# Requests and results
# ------------------------------------------------------------------------------------------


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
    calls, so ``requests / batches`` is the mean batch size; ``prefill_tokens`` is below
    ``prompt_tokens`` when a batch held identical prompts (each is computed once)."""

    requests: int = 0
    batches: int = 0
    prompt_tokens: int = 0
    prefill_tokens: int = 0  # prompt tokens actually computed (identical prompts count once)
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
        cpu_decode_linears: on CPU, compute the fp32 linear layers of decoding steps as a
            blocked ``bmm`` (:mod:`~verifiers_trainer.inference.cpu_decode`), about 2x faster
            than ``F.linear`` for a few rows; ``False`` keeps ``F.linear`` everywhere.
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
        cpu_decode_linears: bool = True,
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
        self.cpu_decode_linears = cpu_decode_linears
        config = getattr(model, "config", None)
        self.max_model_len = max_model_len or getattr(config, "max_position_embeddings", None)
        self.lock = threading.RLock()
        self.stats = EngineStats()
        self.eos_token_ids = _eos_token_ids(model, tokenizer)
        self.vocab_size = _vocab_size(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (sorted(self.eos_token_ids) or [0])[0]
        self.chat = openai_client.Chat(self)
        self.completions = openai_client.Completions(self)
        self.models = openai_client.Models(self)
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

    def _unseeded_rng(self, device: Any) -> Any:
        """The engine's own generator for unseeded requests: seeded once from torch's global
        RNG (so ``torch.manual_seed`` makes runs repeatable), then independent of it, so
        sampling does not shift the trainer's random stream."""
        import torch

        rng = self._rng
        if rng is None or rng.device != torch.device(device):
            seed = int(torch.randint(0, 2**62, (1,)).item())
            rng = torch.Generator(device=device).manual_seed(seed)
            self._rng = rng
        return rng

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
        linears = (fast_decode_linears(self.model) if self.cpu_decode_linears
                   else contextlib.nullcontext())
        try:
            with linears:
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
        # identical prompts (a GRPO group) are read once and their cache rows copied
        distinct: dict[tuple[int, ...], int] = {}
        source = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(distinct), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(distinct), width), dtype=torch.long)
        for row, prompt in enumerate(distinct):
            if prompt:
                input_ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
                mask[row, width - len(prompt):] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        sampler = Sampler(prompts, params, device, self.eos_token_ids,
                          functools.partial(self._unseeded_rng, device))

        with torch.inference_mode():
            out = self._forward(input_ids, mask, positions, None)
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
            if len(distinct) < batch:
                index = torch.tensor(source, device=device)
                cache.reorder_cache(index)
                logits, mask, positions = logits[index], mask[index], positions[index]
            next_positions = positions[:, -1] + 1
        self.stats.prefill_tokens += sum(len(p) for p in distinct)
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
                    done = finished(outputs[row], params[row], self.eos_token_ids,
                                    self.tokenizer.decode)
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

    # -- requests -> prompts and responses -------------------------------------------------
    def chat_prompt_ids(
        self,
        messages: Sequence[Any],
        tools: Sequence[Any] | None = None,
        **template_kwargs: Any,
    ) -> list[int]:
        """The prompt token ids of a chat request (see :func:`openai_client.chat_prompt_ids`)."""
        return openai_client.chat_prompt_ids(self.tokenizer, messages, tools, **template_kwargs)

    def sampling_params(self, request: dict[str, Any], prompt_len: int, chat: bool) -> SamplingParams:
        """Validated :class:`SamplingParams` from request keys (``extra_body`` merged), for
        this model's context length and vocabulary (see :func:`openai_client.sampling_params`)."""
        return openai_client.sampling_params(request, prompt_len, chat,
                                             max_model_len=self.max_model_len,
                                             vocab_size=self.vocab_size)

    def token_text(self, token_id: int) -> str:
        """The text of one token (cached)."""
        text = self._token_text.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id])
            self._token_text[token_id] = text
        return text


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
