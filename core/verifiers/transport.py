"""The lean HTTP path for OpenAI-compatible endpoints: a small HTTP/1.1 client (aiohttp
for TLS and proxies) and fast JSON.

A request an ``openai.AsyncOpenAI`` / ``openai.OpenAI`` client would send for
``chat.completions.create`` or ``completions.create`` is sent here instead when the client
is a plain one (its endpoint, key, headers, query and timeout are taken from it): plain
``http://`` endpoints over :mod:`verifiers.http1` (keep-alive connections pooled per event
loop), ``https://`` and proxied ones over one aiohttp session per event loop; the body
encoded with orjson when installed, and the
response validated in one step from its bytes into the same ``ChatCompletion`` /
``Completion`` objects the openai client returns (server extras such as vLLM's
``prompt_token_ids`` stay in ``model_extra``). Clients this path does not cover (custom
HTTP clients, Azure, credential providers, patched methods, streaming) are used as they
are: :func:`lean_endpoint` returns ``None`` for them.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from verifiers import http1
from verifiers.utils.async_utils import at_loop_end

try:  # orjson: about 3x faster than the standard library on these bodies
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, default=_to_jsonable)

    _loads = orjson.loads
    _DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback is for safety
    orjson = None  # type: ignore[assignment]

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, default=_to_jsonable, separators=(",", ":")).encode()

    _loads = json.loads  # type: ignore[assignment]
    _DecodeError = (ValueError,)

__all__ = [
    "ConnectionFailedError", "HttpStatusError", "LeanEndpoint", "MalformedResponseError",
    "NotCoveredError", "RequestTimeoutError", "lean_endpoint",
]

# Sampling keys the lean path cannot honour: the request goes through the client itself.
_NOT_COVERED = frozenset({"stream", "stream_options"})
_SENTINELS = frozenset({"NotGiven", "Omit"})  # openai's "argument not given" markers
_CONNECTION_LIMIT = 1000  # the openai client's own default pool size


class HttpStatusError(Exception):
    """A non-2xx answer: ``status``, the server's ``message`` and the response headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str]):
        super().__init__(f"Error code: {status} - {message}")
        self.status_code = status
        self.message = message
        self.headers = dict(headers)


class MalformedResponseError(Exception):
    """A 2xx answer whose body is not the JSON object the endpoint promises."""


class RequestTimeoutError(TimeoutError):
    """No complete answer within the request's time limit."""


class NotCoveredError(TypeError):
    """A request the lean path cannot encode: the caller sends it through the client."""


class ConnectionFailedError(Exception):
    """The server could not be reached, or dropped the connection."""


def _to_jsonable(obj: Any) -> Any:
    """JSON for pydantic objects in a request (e.g. a ``ChatCompletionMessage`` put back
    into ``messages``), dumped the way the openai client dumps them."""
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(exclude_unset=True, mode="json")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


@dataclass(frozen=True)
class LeanEndpoint:
    """Where and how to send: ``base_url`` ends with ``/``; ``timeout`` in seconds."""

    base_url: str
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = 600.0
    proxy: str | None = None

    def covers(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether these ``create`` keyword arguments can go over the lean path."""
        if _NOT_COVERED.intersection(kwargs) or _NOT_COVERED.intersection(
                kwargs.get("extra_body") or ()):
            return False
        response_format = kwargs.get("response_format")
        return response_format is None or isinstance(response_format, Mapping)

    async def create(self, path: str, response_type: Any, **kwargs: Any) -> Any:
        """POST ``kwargs`` as the JSON body of ``path`` (``"chat/completions"``, ...) the
        way the openai client would (``extra_body`` merged in, ``extra_headers``,
        ``extra_query`` and ``timeout`` applied) and return a ``response_type``."""
        import aiohttp

        headers = dict(self.headers)
        headers.update(kwargs.pop("extra_headers", None) or {})
        query = {**self.query, **(kwargs.pop("extra_query", None) or {})}
        timeout = kwargs.pop("timeout", self.timeout)
        extra_body = kwargs.pop("extra_body", None) or {}
        body = {**kwargs, **extra_body}
        try:
            payload = _dumps({k: v for k, v in body.items() if type(v).__name__ not in _SENTINELS})
        except TypeError as exc:
            raise NotCoveredError(str(exc)) from exc
        url = self.base_url + path
        if self.proxy is None and http1.covers(url):
            return await self._create_http1(url, headers, query, timeout, payload,
                                            response_type)
        session = await _session()
        try:
            async with session.post(
                self.base_url + path, data=payload, headers=headers, params=query or None,
                timeout=_client_timeout(timeout), proxy=self.proxy,
            ) as response:
                raw = await response.read()
                status = response.status
                response_headers = response.headers
        except TimeoutError as exc:
            raise RequestTimeoutError(f"Request timed out (no answer within {_describe(timeout)})"
                                      ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ConnectionFailedError(f"{type(exc).__name__}: {exc}") from exc
        if status >= 300:
            raise HttpStatusError(status, _error_message(raw), response_headers)
        return _parse(raw, response_type)


    async def _create_http1(self, url: str, headers: dict[str, str], query: Mapping[str, Any],
                            timeout: Any, payload: bytes, response_type: Any) -> Any:
        """The same request over :mod:`verifiers.http1` (plain ``http://``, no proxy)."""
        if query:
            import urllib.parse

            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        if timeout is None or isinstance(timeout, int | float):
            limits = {"total": None if timeout is None else float(timeout)}
        else:  # an httpx-style Timeout
            limits = {"connect": getattr(timeout, "connect", None),
                      "read": getattr(timeout, "read", None)}
        try:
            status, response_headers, raw = await http1.post(url, headers, payload, **limits)
        except ValueError as exc:  # a header only the client itself can send (or refuse)
            raise NotCoveredError(str(exc)) from exc
        except http1.Http1Error as exc:
            if exc.kind == "timeout":
                raise RequestTimeoutError(f"Request timed out ({exc}; limit "
                                          f"{_describe(timeout)})") from exc
            if exc.kind == "protocol":
                raise MalformedResponseError(f"the server's response is not valid HTTP: {exc}"
                                             ) from exc
            raise ConnectionFailedError(str(exc)) from exc
        if status >= 300:
            raise HttpStatusError(status, _error_message(raw), response_headers)
        return _parse(raw, response_type)


def _parse(raw: bytes, response_type: Any) -> Any:
    """``response_type`` from the body bytes: strict validation in one pass (fast), and the
    openai client's own lenient construction for bodies that bend the schema (a finish
    reason it does not list, a missing ``created``) so nothing it accepts is refused."""
    import pydantic

    try:
        return response_type.model_validate_json(raw)
    except pydantic.ValidationError:
        pass
    try:
        data = _loads(raw)
    except _DecodeError as exc:
        raise MalformedResponseError(f"the response body is not JSON ({exc}): {raw[:200]!r}") from exc
    if not isinstance(data, dict):
        raise MalformedResponseError(f"the response body is not a JSON object: {raw[:200]!r}")
    try:
        from openai._models import construct_type

        return construct_type(type_=response_type, value=data)
    except ImportError:  # pragma: no cover - openai's internals moved
        return response_type.model_construct(**data)


def _error_message(raw: bytes) -> str:
    try:
        data = _loads(raw)
    except _DecodeError:
        return raw[:2000].decode("utf-8", "replace")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, Mapping) and error.get("message"):
        return str(error["message"])
    return str(data)[:2000]


def _describe(timeout: Any) -> str:
    if isinstance(timeout, int | float):
        return f"{timeout:g} s"
    if timeout is None:
        return "the time limit"
    return f"{getattr(timeout, 'connect', None)} s to connect, {getattr(timeout, 'read', None)} s to read"


def _client_timeout(seconds: Any) -> Any:
    import aiohttp

    if seconds is None:
        return aiohttp.ClientTimeout(total=None)
    if isinstance(seconds, int | float):
        return aiohttp.ClientTimeout(total=float(seconds))
    # an httpx-style Timeout (connect / read / write / pool)
    return aiohttp.ClientTimeout(
        total=None, connect=getattr(seconds, "connect", None),
        sock_read=getattr(seconds, "read", None),
    )


# -- one aiohttp session per event loop ---------------------------------------------------

_SESSIONS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


async def _session() -> Any:
    loop = asyncio.get_running_loop()
    entry = _SESSIONS.get(loop)
    if entry is not None and not entry[0].closed:
        return entry[0]
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=_CONNECTION_LIMIT),
        # proxies from the environment are resolved once per endpoint (``_env_proxy``):
        # aiohttp's trust_env looks them up in a worker thread on every request
        skip_auto_headers=("User-Agent",),
    )
    async def close() -> None:  # the session's connections close with their loop
        await session.close()
        _SESSIONS.pop(loop, None)

    _SESSIONS[loop] = (session, await at_loop_end(close))
    return session


# -- which clients the lean path covers ---------------------------------------------------

_PLAIN_HTTP_CLIENTS = {"AsyncHttpxClientWrapper", "SyncHttpxClientWrapper"}


def lean_endpoint(client: Any) -> LeanEndpoint | None:
    """The endpoint of a plain ``openai.AsyncOpenAI`` / ``openai.OpenAI`` (cached on it),
    or ``None`` when the client must be used itself: a subclass (Azure, a wrapper), an HTTP
    client the user configured (proxies, transports, mounts), a key provider or workload
    identity, or ``create`` methods patched by instrumentation."""
    state = getattr(client, "__dict__", {})
    key = (state.get("api_key"), state.get("_base_url"))  # re-read when either is changed
    cached = state.get("_vf_lean")
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        endpoint = _endpoint_of(client)
    except Exception:  # an openai version whose internals differ: use the client itself
        endpoint = None
    try:
        client._vf_lean = (key, endpoint)
    except AttributeError:
        pass
    return endpoint


def _is_openais(function: Any) -> bool:
    """Whether ``function`` is the openai package's own (not replaced by instrumentation,
    which would expect to see every request)."""
    import os
    import types

    import openai

    code = getattr(function, "__code__", None)
    return (type(function) is types.FunctionType and code is not None
            and code.co_filename.startswith(os.path.dirname(openai.__file__) + os.sep))


def _endpoint_of(client: Any) -> LeanEndpoint | None:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    import openai

    if type(client) not in (openai.AsyncOpenAI, openai.OpenAI):
        return None
    http = getattr(client, "_client", None)
    if type(http).__name__ not in _PLAIN_HTTP_CLIENTS and not getattr(http, "_vf_lean_ok", False):
        return None
    for name in ("_api_key_provider", "workload_identity", "_provider", "_provider_runtime",
                 "_workload_identity_auth"):
        if getattr(client, name, None) is not None:
            return None
    if getattr(client, "custom_auth", None) is not None:
        return None
    for resource in (client.chat.completions, client.completions):
        if "create" in vars(resource) or not _is_openais(type(resource).create):
            return None
    api_key = client.api_key
    if not isinstance(api_key, str):
        return None
    headers = {k: v for k, v in client.default_headers.items() if isinstance(v, str)}
    if "X-Stainless-Async" in headers:  # read outside a loop it says "false"; we send async
        headers["X-Stainless-Async"] = "async:asyncio"
    if api_key and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = f"Bearer {api_key}"
    query = dict(client.default_query or {})
    if not all(isinstance(v, str) for v in query.values()):
        return None
    base_url = str(client.base_url)
    if not base_url.endswith("/"):
        base_url += "/"
    return LeanEndpoint(base_url, headers, query, _seconds(client.timeout), _env_proxy(base_url))


def _env_proxy(url: str) -> str | None:
    """The proxy ``HTTP(S)_PROXY`` / ``NO_PROXY`` name for ``url``, as httpx (the openai
    client's transport) would use it; ``None`` for a direct connection."""
    import urllib.parse
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    parts = urllib.parse.urlsplit(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(parts.hostname or "", proxies):
        return None
    return proxy


def _seconds(timeout: Any) -> Any:
    """The client's timeout as seconds, or an object with ``connect``/``read`` seconds."""
    if timeout is None or isinstance(timeout, int | float):
        return timeout
    if hasattr(timeout, "read"):
        return timeout
    return None
