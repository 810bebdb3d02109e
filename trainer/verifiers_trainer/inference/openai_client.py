"""The OpenAI-shaped client of :class:`~verifiers_trainer.inference.engine.InProcessEngine`:
``engine.chat.completions.create``, ``engine.completions.create`` and ``engine.models.list``.

Requests are validated here (refused with ``openai.BadRequestError`` where the engine cannot
do what they ask) and turned into prompt token ids and :class:`SamplingParams`; answers are
rendered by ``verifiers.utils.openai_wire`` and returned as real ``openai`` objects.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from verifiers.utils import openai_wire as wire
from verifiers.utils.chat_template import tool_calls_as_text
from verifiers_trainer.inference.sampler import SamplingParams
from verifiers_trainer.inference.tool_calls import parse_tool_calls

if TYPE_CHECKING:
    from verifiers_trainer.inference.engine import Generation, InProcessEngine

logger = logging.getLogger(__name__)

#: Request keys accepted and ignored (transport and bookkeeping options).
IGNORED_KEYS = frozenset({
    "timeout", "extra_headers", "extra_query", "user", "metadata", "store", "service_tier",
    "parallel_tool_calls", "prompt_cache_key", "safety_identifier", "stream_options",
    "model", "request_id", "priority",
})
_warned_keys: set[str] = set()


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
# Requests
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


def chat_prompt_ids(
    tokenizer: Any,
    messages: Sequence[Any],
    tools: Sequence[Any] | None = None,
    **template_kwargs: Any,
) -> list[int]:
    """The prompt token ids of a chat request: the chat template rendered, then
    tokenized without extra special tokens (what ``apply_chat_template`` gives). A template
    that drops tool calls sees them written into the assistant's content
    (:func:`verifiers.utils.chat_template.tool_calls_as_text`)."""
    if not getattr(tokenizer, "chat_template", None):
        raise bad_request(
            "The tokenizer has no chat template, so chat requests cannot be rendered; set "
            "tokenizer.chat_template or use completions.create with a text prompt."
        )
    template_kwargs.setdefault("add_generation_prompt", True)
    if template_kwargs.get("continue_final_message"):
        template_kwargs["add_generation_prompt"] = False
    try:
        text = tokenizer.apply_chat_template(
            tool_calls_as_text([_plain_message(m) for m in messages], tokenizer),
            tools=list(tools) if tools else None,
            tokenize=False, **template_kwargs,
        )
    except Exception as exc:
        raise bad_request(f"The chat template failed on these messages: {exc}") from exc
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def sampling_params(request: dict[str, Any], prompt_len: int, chat: bool, *,
                    max_model_len: int | None, vocab_size: int) -> SamplingParams:
    """Validated :class:`SamplingParams` from request keys (``extra_body`` merged), for a
    model with this context length (None: unknown) and vocabulary size."""
    r = request
    if prompt_len < 1:
        raise bad_request("The prompt is empty: it needs at least one token.")
    max_tokens = r.get("max_completion_tokens") if chat else None
    if max_tokens is None:
        max_tokens = r.get("max_tokens")
    if max_model_len is not None:
        room = max_model_len - prompt_len
        if room < 1:
            raise bad_request(
                f"This model's maximum context length is {max_model_len} tokens. "
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
    outside = [t for t in [*bias, *stop_token_ids] if not 0 <= t < vocab_size]
    if outside:
        raise bad_request(
            f"Token ids {outside} in logit_bias / stop_token_ids are outside the "
            f"vocabulary (0..{vocab_size - 1})."
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



# ------------------------------------------------------------------------------------------
# Responses
# ------------------------------------------------------------------------------------------


class ChatCompletions:
    """``engine.chat.completions``."""

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
        logprobs = None
        if params.top_logprobs or request.get("logprobs"):
            logprobs = wire.chat_logprobs(_chat_logprob_entries(engine, gen))
        want_ids = bool(request.get("return_token_ids"))
        choice = wire.chat_choice(
            0,
            wire.assistant_message(content if (content or not calls) else None, calls or None),
            finish,
            logprobs,
            stop_reason=gen.stop_reason,
            token_ids=gen.token_ids if want_ids else None,
        )
        body = wire.chat_completion(
            f"chatcmpl-{uuid.uuid4().hex}", model, [choice],
            wire.usage(len(prompt_ids), len(gen.token_ids)),
            prompt_token_ids=prompt_ids if want_ids else None,
        )
        return ChatCompletion.model_validate(body)


class Chat:
    """``engine.chat``."""

    def __init__(self, engine: InProcessEngine) -> None:
        self.completions = ChatCompletions(engine)


class Completions:
    """``engine.completions``."""

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
        value = request.get("logprobs")
        want_logprobs = value is not None and value is not False
        want_ids = bool(request.get("return_token_ids"))
        choices = []
        for index, gen in enumerate(gens):
            choices.append(wire.text_choice(
                index, gen.text, gen.finish_reason,
                _text_logprobs(engine, gen) if want_logprobs else None,
                stop_reason=gen.stop_reason,
                prompt_token_ids=prompts[index],
                token_ids=gen.token_ids if want_ids else None,
            ))
        body = wire.text_completion(
            f"cmpl-{uuid.uuid4().hex}", model, choices,
            wire.usage(sum(len(p) for p in prompts), sum(len(g.token_ids) for g in gens)),
            prompt_token_ids=prompts[0] if want_ids else None,
        )
        return Completion.model_validate(body)


class Models:
    """``engine.models``."""

    def __init__(self, engine: InProcessEngine) -> None:
        self._engine = engine

    async def list(self) -> Any:
        """The one model this engine serves."""
        from openai.pagination import SyncPage
        from openai.types import Model

        body = wire.model_list([self._engine.model_name], owned_by="verifiers")
        return SyncPage[Model](data=[Model(**m) for m in body["data"]], object=body["object"])


def _chat_logprob_entries(engine: InProcessEngine, gen: Generation) -> list[dict[str, Any]]:
    """Chat logprob entries of a generation: each token's raw logprob and its alternatives."""
    entries = []
    for i, (token, logprob) in enumerate(zip(gen.token_ids, gen.logprobs, strict=True)):
        alternatives = gen.top_logprobs[i] if gen.top_logprobs else []
        top = [wire.token_logprob(engine.token_text(t), lp) for t, lp in alternatives]
        entries.append(wire.token_logprob(engine.token_text(token), logprob, top_logprobs=top))
    return entries


def _text_logprobs(engine: InProcessEngine, gen: Generation) -> dict[str, Any]:
    """Legacy completion logprobs of a generation (alternatives when they were asked for)."""
    top = None
    if gen.top_logprobs is not None:
        top = [{engine.token_text(t): lp for t, lp in alts} for alts in gen.top_logprobs]
    return wire.text_logprobs([engine.token_text(t) for t in gen.token_ids], gen.logprobs, top)


__all__ = ["IGNORED_KEYS", "Chat", "ChatCompletions", "Completions", "Models", "bad_request",
           "chat_prompt_ids", "sampling_params"]
