"""Talking to OpenAI-compatible servers: client normalisation, timeouts, retries.

Every model call in the project goes through :func:`create_chat` / :func:`create_completion`.
They take a per-request timeout, retry transient failures (HTTP 408/409/429/5xx, connection
errors, timeouts, malformed responses) with exponential backoff and jitter (or the delay the
server asks for in ``Retry-After`` / ``retry-after-ms``), and raise
:class:`ModelRequestError` with the full story when retries are exhausted or the error is
permanent. The openai client's own retries are switched off so that one policy applies.

Requests for a plain ``openai.AsyncOpenAI`` / ``openai.OpenAI`` go over the lean HTTP path
of :mod:`verifiers.transport` (same endpoint, key, headers and timeout; the same response
objects); other clients are called as they are. :func:`gather_until_unreachable` runs a
batch of rollouts and stops it when a server stops accepting connections.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import json
import random
import time
import weakref
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from verifiers.transport import (
    ConnectionFailedError,
    HttpStatusError,
    MalformedResponseError,
    NotCoveredError,
    lean_endpoint,
)
from verifiers.utils.async_utils import at_loop_end

TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}

#: Public: the client helpers other packages (the trainer among them) may use.
__all__ = [
    "ContextLengthError",
    "ModelRequestError",
    "RetryPolicy",
    "ServerUnreachableError",
    "as_async_client",
    "client_for_loop",
    "create_chat",
    "create_completion",
    "gather_until_unreachable",
    "make_async_client",
    "normalize_sampling_args",
]


@dataclass
class RetryPolicy:
    """How model requests are retried.

    ``timeout`` is the per-request limit in seconds (``None``: the client's own);
    ``max_retries`` is the number of retries after the first attempt; the delay before retry
    ``k`` is ``min(backoff_max, backoff_base * 2**k)`` scaled by a random factor in [0.5, 1],
    or the server's ``retry-after-ms`` / ``Retry-After`` when it sends one (at most
    ``backoff_max``). ``stop_after_connection_failures``: a batch of rollouts stops when
    that many requests in a row to one server failed for good because it could not be
    reached (``0``: never stop).
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    timeout: float | None = 600.0
    stop_after_connection_failures: int = 10

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}.")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0.")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds (or None), got {self.timeout}.")
        if self.stop_after_connection_failures < 0:
            raise ValueError(
                "stop_after_connection_failures must be >= 0 (0: never stop), got "
                f"{self.stop_after_connection_failures}."
            )

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based) after ``exc``."""
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:
            return min(self.backoff_max, asked)
        return min(self.backoff_max, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)


def retry_after(exc: BaseException) -> float | None:
    """The delay in seconds a failed response asks for: ``retry-after-ms`` (milliseconds),
    else ``Retry-After`` (seconds or an HTTP date); ``None`` when it asks for none."""
    headers = getattr(exc, "headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        if "retry-after" in lowered:
            value = lowered["retry-after"].strip()
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
    except (ValueError, TypeError, OverflowError):
        return None
    return None


class ModelRequestError(Exception):
    """A model request that failed for good. ``kind`` is a short machine-readable reason."""

    def __init__(self, kind: str, message: str, attempts: int, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts
        self.status = status


class ContextLengthError(ModelRequestError):
    """The prompt no longer fits the model's context window (the rollout is truncated)."""


class ServerUnreachableError(ModelRequestError):
    """A batch stopped because a server could not be reached for many requests in a row.

    ``server`` is its URL; ``records`` the rollouts finished before the stop (successful or
    failed, in input order); ``results`` the same as ``GenerateOutputs`` where the
    environment sets it."""

    def __init__(self, message: str, server: str, records: list[Any], attempts: int):
        super().__init__("server_unreachable", message, attempts)
        self.server = server
        self.records = records
        self.results: Any = None


def as_async_client(client: Any) -> Any:
    """An async client equivalent to ``client``.

    ``openai.OpenAI`` becomes a new ``openai.AsyncOpenAI`` with the same endpoint, key,
    headers and timeout (so many rollouts can run concurrently; the caller closes it); async
    clients and any object with an async ``chat.completions.create`` (e.g. an in-process
    engine) pass through unchanged. Use :func:`client_for_loop` inside async code.
    """
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        return client
    if isinstance(client, openai.OpenAI):
        return openai.AsyncOpenAI(
            http_client=fast_http_client(),
            api_key=client.api_key,
            organization=client.organization,
            project=client.project,
            base_url=client.base_url,
            timeout=client.timeout,
            max_retries=client.max_retries,
            default_headers=client._custom_headers or None,
            default_query=client._custom_query or None,
        )
    return _checked(client)


_LOOP_CLIENTS: weakref.WeakKeyDictionary[Any, dict[int, tuple[Any, Any, Any]]] = (
    weakref.WeakKeyDictionary()
)



async def client_for_loop(client: Any) -> Any:
    """An async client that is safe to use on the running event loop.

    HTTP connections belong to the loop that opened them, while clients outlive loops (each
    sync ``evaluate()`` call runs its own). So: a sync ``OpenAI`` client gets an async twin
    per loop; an ``AsyncOpenAI`` is used as is on the first loop that uses it and copied
    (same settings, fresh connections) on any other. Copies and twins are cached for the
    loop's lifetime and closed when it ends. Other objects (in-process engines) pass through.
    """
    import openai

    client = _checked(client)
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        return client
    loop = asyncio.get_running_loop()
    if isinstance(client, openai.AsyncOpenAI):
        origin = getattr(client, "_vf_loop", None)
        if origin is None:
            try:
                client._vf_loop = weakref.ref(loop)  # type: ignore[attr-defined]
            except AttributeError:
                pass
            return client
        if origin() is loop:
            return client
    per_loop = _LOOP_CLIENTS.setdefault(loop, {})
    cached = per_loop.get(id(client))
    if cached is not None and cached[0] is client:
        return cached[1]
    if isinstance(client, openai.OpenAI):
        fresh = as_async_client(client)
    else:
        fresh = client.copy(http_client=fast_http_client() or openai.DefaultAsyncHttpxClient())
    fresh._vf_loop = weakref.ref(loop)
    closer = await at_loop_end(fresh.close)
    per_loop[id(client)] = (client, fresh, closer)
    return fresh


def _checked(client: Any) -> Any:
    if client is None:
        raise TypeError(
            "No client given. Pass an OpenAI-compatible client, e.g. "
            "`OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='EMPTY')`."
        )
    chat = getattr(getattr(client, "chat", None), "completions", None)
    if chat is None or not hasattr(chat, "create"):
        raise TypeError(
            f"{type(client).__name__} is not an OpenAI-compatible client: it has no "
            "`chat.completions.create`. Pass `openai.OpenAI(...)` or `openai.AsyncOpenAI(...)`."
        )
    return client


def fast_http_client() -> Any:
    """The fastest HTTP transport the openai client supports here: aiohttp when installed
    (about 2.5x the requests per second of the default on a small machine), else the
    default (``None``)."""
    import openai

    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    http = openai.DefaultAioHttpClient()
    http._vf_lean_ok = True  # type: ignore[attr-defined]  # nothing configured on it: the lean path may replace it
    return http


def make_async_client(base_url: str, api_key: str, timeout: float | None = None) -> Any:
    """An ``AsyncOpenAI`` for ``base_url`` with its own retries off (:func:`create_chat`
    retries). Its requests go over the lean path; its aiohttp transport serves the rest."""
    import openai

    kwargs: dict[str, Any] = {"base_url": base_url, "api_key": api_key, "max_retries": 0}
    if timeout is not None:
        kwargs["timeout"] = timeout
    return openai.AsyncOpenAI(http_client=fast_http_client(), **kwargs)


def _classify(exc: BaseException) -> tuple[str, bool, int | None]:
    """(kind, transient?, status) for an exception raised by a model request."""
    import openai

    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError | ConnectionFailedError):
        return "connection_error", True, None
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError
                  | MalformedResponseError):
        # a 200 whose body is not JSON surfaces as a bare JSONDecodeError
        return "malformed_response", True, None
    if isinstance(exc, openai.APIStatusError | HttpStatusError):
        status = exc.status_code
        return f"http_{status}", status in TRANSIENT_STATUS or status >= 500, status
    return type(exc).__name__, False, None


_CONTEXT_MARKERS = ("context length", "maximum context", "context window", "too long",
                    "max_model_len", "prompt is too long")


def _is_context_error(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, HttpStatusError):
        if exc.status_code != 400:
            return False
    elif not isinstance(exc, openai.BadRequestError):
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _CONTEXT_MARKERS)


async def _with_retries(
    call: Any, policy: RetryPolicy, what: str, server: str, **kwargs: Any
) -> Any:
    attempt = 0
    if policy.timeout is not None:
        kwargs["timeout"] = policy.timeout
    while True:
        try:
            response = await call(**kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _is_context_error(exc):
                raise ContextLengthError("context_length", str(exc), attempt + 1, 400) from exc
            kind, transient, status = _classify(exc)
            if not transient or attempt >= policy.max_retries:
                if kind == "connection_error":
                    _connection_failed(server, f"{type(exc).__name__}: {exc}")
                suffix = f" after {attempt + 1} attempts" if attempt else ""
                raise ModelRequestError(
                    kind, f"{what} failed{suffix}: {type(exc).__name__}: {exc}", attempt + 1, status
                ) from exc
            await asyncio.sleep(policy.delay(attempt, exc))
            attempt += 1
            continue
        _connected(server)
        if not getattr(response, "choices", None):
            if attempt >= policy.max_retries:
                raise ModelRequestError(
                    "empty_response", f"{what} returned no choices", attempt + 1
                )
            await asyncio.sleep(policy.delay(attempt))
            attempt += 1
            continue
        return response


def _plain_client(client: Any) -> Any:
    """The client with its own retries switched off (ours apply), when it supports that."""
    with_options = getattr(client, "with_options", None)
    if with_options is None:
        return client
    cached = getattr(client, "_vf_no_retry", None)
    if cached is None:
        cached = with_options(max_retries=0)
        try:
            client._vf_no_retry = cached
        except AttributeError:
            pass
    return cached


def _route(client: Any, path: str, response_type: Any, resource: str, kwargs: Mapping[str, Any]
           ) -> tuple[Any, str]:
    """(the call to retry, the server's URL): the lean path when it covers this client and
    these arguments, else the client's own ``create`` (its retries off)."""
    endpoint = lean_endpoint(client)
    own = client.chat.completions if resource == "chat" else client.completions
    if "create" in getattr(own, "__dict__", {}):  # replaced on this very client: keep it
        target = own
    else:
        plain = _plain_client(client)
        target = plain.chat.completions if resource == "chat" else plain.completions
    if endpoint is None or not endpoint.covers(kwargs):
        return target.create, str(getattr(client, "base_url", "") or type(client).__name__)

    async def lean(**args: Any) -> Any:
        try:
            return await endpoint.create(path, response_type, **args)
        except NotCoveredError:  # e.g. objects in the request that only the client encodes
            return await target.create(**args)

    return lean, endpoint.base_url


async def create_chat(
    client: Any,
    model: str,
    messages: list[dict[str, Any]],
    sampling_args: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    policy: RetryPolicy | None = None,
) -> Any:
    """``client.chat.completions.create`` with our timeout and retry policy; returns the
    ``ChatCompletion`` (or whatever the client returns)."""
    from openai.types.chat import ChatCompletion

    kwargs = dict(sampling_args or {})
    if tools:
        kwargs["tools"] = tools
    call, server = _route(client, "chat/completions", ChatCompletion, "chat", kwargs)
    return await _with_retries(
        call,
        policy or RetryPolicy(),
        f"chat request to model {model!r}",
        server,
        model=model,
        messages=messages,
        **kwargs,
    )


async def create_completion(
    client: Any,
    model: str,
    prompt: str,
    sampling_args: dict[str, Any] | None = None,
    policy: RetryPolicy | None = None,
) -> Any:
    """``client.completions.create`` with our timeout and retry policy."""
    from openai.types import Completion

    kwargs = dict(sampling_args or {})
    call, server = _route(client, "completions", Completion, "text", kwargs)
    return await _with_retries(
        call,
        policy or RetryPolicy(),
        f"completion request to model {model!r}",
        server,
        model=model,
        prompt=prompt,
        **kwargs,
    )


# -- stopping a batch when a server is gone -----------------------------------------------


@dataclass
class _ConnectionWatch:
    """Per batch: requests in a row, per server, that failed for good on connecting."""

    limit: int
    failures: dict[str, int] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)
    tripped: str | None = None
    event: asyncio.Event = field(default_factory=asyncio.Event)


_WATCH: contextvars.ContextVar[_ConnectionWatch | None] = contextvars.ContextVar(
    "verifiers_connection_watch", default=None
)


def _connection_failed(server: str, error: str) -> None:
    watch = _WATCH.get()
    if watch is None or watch.limit <= 0:
        return
    count = watch.failures.get(server, 0) + 1
    watch.failures[server] = count
    watch.last_error[server] = error
    if count >= watch.limit and watch.tripped is None:
        watch.tripped = server
        watch.event.set()


def _connected(server: str) -> None:
    watch = _WATCH.get()
    if watch is not None and watch.failures.get(server):
        watch.failures[server] = 0


async def gather_until_unreachable(
    coros: Iterable[Awaitable[Any]], policy: RetryPolicy | None = None
) -> list[Any]:
    """``asyncio.gather`` of a batch of rollouts, stopped when a server is gone.

    When ``policy.stop_after_connection_failures`` requests in a row to one server fail for
    good because it cannot be reached, the rollouts still running are cancelled and
    :class:`ServerUnreachableError` is raised, carrying the rollouts finished so far."""
    policy = policy or RetryPolicy()
    watch = _ConnectionWatch(policy.stop_after_connection_failures)
    token = _WATCH.set(watch)
    try:
        tasks = [asyncio.ensure_future(c) for c in coros]  # each copies the context: the watch
    finally:
        _WATCH.reset(token)
    if not tasks:
        return []
    everything: asyncio.Future[Any] = asyncio.gather(*tasks)
    stop: asyncio.Future[Any] = asyncio.ensure_future(watch.event.wait())
    try:
        await asyncio.wait({everything, stop}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        everything.cancel()
        raise
    finally:
        stop.cancel()
    if everything.done():
        return everything.result()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if everything.done() and not everything.cancelled():
        everything.exception()  # retrieved: the stop below is the error to report
    records = [t.result() for t in tasks if not t.cancelled() and t.exception() is None]
    server = watch.tripped or "?"
    raise ServerUnreachableError(
        f"Stopped: {watch.limit} requests in a row to {server} failed because the server "
        f"could not be reached (last: {watch.last_error.get(server)}). Is it running? "
        f"{len(records)} of {len(tasks)} rollouts had finished and are kept; the other "
        f"{len(tasks) - len(records)} were not run.",
        server, records, watch.limit,
    )


_OPENAI_SAMPLING_KEYS = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "seed",
    "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias",
    "extra_body", "extra_headers", "extra_query", "response_format", "tool_choice",
    "parallel_tool_calls", "user", "reasoning_effort", "timeout",
})


def normalize_sampling_args(sampling_args: dict[str, Any] | None) -> dict[str, Any]:
    """Move non-OpenAI sampling keys (``top_k``, ``min_p``, ``repetition_penalty``,
    ``return_token_ids``, ...) into ``extra_body`` so the openai client sends them."""
    args = dict(sampling_args or {})
    extra = dict(args.pop("extra_body", None) or {})
    for key in list(args):
        if key not in _OPENAI_SAMPLING_KEYS:
            extra[key] = args.pop(key)
    if extra:
        args["extra_body"] = extra
    return args
