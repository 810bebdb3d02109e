"""A scripted, OpenAI-compatible HTTP server for tests and benchmarks (standard library only).

Thread mode (in-process, scriptable with a Python callable)::

    with ScriptedServer(rules=[(r"capital", "Paris")], latency_ms=5) as server:
        resp = server.sync_client().chat.completions.create(model="m", messages=msgs)
        assert server.stats["completed"] == 1 and server.requests[0]["_path"]

Subprocess mode (own process and GIL, for benchmarks; options must be JSON-serializable)::

    server = ScriptedServer.spawn(latency_ms=20, failure_rate=0.01, seed=1)
    ...  # point AsyncOpenAI(base_url=server.base_url) at it, then: server.stats(); server.stop()

The toy tokenizer maps each UTF-8 byte to the token id ``byte + 3`` (see ``encode``/``decode``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeAlias

from verifiers.utils import openai_wire as wire

if TYPE_CHECKING:  # pragma: no cover - typing only
    import openai

__all__ = [
    "FAULT_KINDS",
    "ErrorReply",
    "Reply",
    "ScriptedServer",
    "SpawnedServer",
    "Stats",
    "ToolCall",
    "decode",
    "encode",
    "render_chat_prompt",
    "render_tool_calls",
]

#: Fault kinds understood by ``failure_kinds`` and ``fail_next``.
FAULT_KINDS: tuple[str, ...] = ("500", "429", "timeout", "garbage", "drop")

#: Token ids 0, 1 and 2 are reserved; a byte ``b`` is token ``b + TOKEN_ID_OFFSET``.
TOKEN_ID_OFFSET = 3

_COMPLETION_PATHS = ("/v1/chat/completions", "/v1/completions")
_CONTROL_PATHS = ("/_stats", "/_control", "/_requests")
_GARBAGE_BODY = b'{"id": "scripted-garbage", "object": "chat.completion", "choices": [{"index'
_TOKEN_STR = [bytes([b]).decode("latin-1") for b in range(256)]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# --------------------------------------------------------------------------------------------
# Toy tokenizer and prompt rendering
# --------------------------------------------------------------------------------------------


def encode(text: str) -> list[int]:
    """Token ids of ``text``: one token per UTF-8 byte, id = byte value + 3."""
    return [b + TOKEN_ID_OFFSET for b in text.encode("utf-8")]


def decode(ids: Iterable[int]) -> str:
    """Inverse of :func:`encode` (reserved/out-of-range ids are skipped, bad UTF-8 replaced)."""
    data = bytes(i - TOKEN_ID_OFFSET for i in ids if TOKEN_ID_OFFSET <= i < 256 + TOKEN_ID_OFFSET)
    return data.decode("utf-8", "replace")


def _logprob(token_id: int) -> float:
    """Deterministic fake log-probability of a token."""
    return round(-0.01 * (1 + token_id % 7), 6)


def _content_text(content: Any) -> str:
    """Text of a message ``content`` (a string, a list of parts, or None)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


def render_tool_calls(calls: Iterable[tuple[str, str]]) -> str:
    """Render ``(name, arguments_string)`` pairs the way they appear in completion tokens."""
    return "\n".join(
        "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"
        for name, arguments in calls
    )


def _message_tool_calls(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, arguments)`` pairs of an assistant message's ``tool_calls`` (request side)."""
    calls = []
    for call in message.get("tool_calls") or []:
        function = (call.get("function") or {}) if isinstance(call, Mapping) else {}
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append((str(function.get("name", "")), arguments))
    return calls


def render_chat_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """ChatML rendering of ``messages`` followed by the assistant generation header.

    Assistant tool calls are appended to the content exactly as the server renders them in the
    completion, so a follow-up prompt extends the previous prompt + completion token ids.
    """
    out = []
    for message in messages:
        role = str(message.get("role", "user"))
        text = _content_text(message.get("content"))
        if role == "assistant" and message.get("tool_calls"):
            text += render_tool_calls(_message_tool_calls(message))
        out.append(f"<|im_start|>{role}\n{text}<|im_end|>\n")
    out.append("<|im_start|>assistant\n")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


@dataclass
class ToolCall:
    """A tool call in a scripted reply; a dict ``arguments`` is JSON-encoded, a str is verbatim."""

    name: str
    arguments: str | dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments string as sent to the client."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)

    def to_json(self) -> dict[str, Any]:
        """JSON form (used to ship replies to a spawned server)."""
        data: dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        if self.id is not None:
            data["id"] = self.id
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolCall:
        """Build from ``{"name", "arguments", "id"?}`` or an OpenAI-style ``{"function": ...}``."""
        if "function" in data:
            function = data["function"]
            return cls(function["name"], function.get("arguments", {}), data.get("id"))
        return cls(data["name"], data.get("arguments", {}), data.get("id"))


@dataclass
class Reply:
    """One scripted assistant answer.

    ``finish_reason`` is computed when None ("length", "tool_calls" or "stop");
    ``delay_ms`` adds latency on top of the server's ``latency_ms`` for this reply.
    """

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    delay_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON form: ``{"content": ..., "tool_calls": [{"name": ..., "arguments": ...}]}``."""
        data: dict[str, Any] = {"content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [call.to_json() for call in self.tool_calls]
        if self.finish_reason is not None:
            data["finish_reason"] = self.finish_reason
        if self.delay_ms:
            data["delay_ms"] = self.delay_ms
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        """Inverse of :meth:`to_json`."""
        calls = [
            c if isinstance(c, ToolCall) else ToolCall.from_json(c)
            for c in data.get("tool_calls") or []
        ]
        return cls(
            content=data.get("content"),
            tool_calls=calls,
            finish_reason=data.get("finish_reason"),
            delay_ms=float(data.get("delay_ms", 0.0)),
        )


@dataclass
class ErrorReply:
    """A scripted HTTP error with an OpenAI-style error body (e.g. a context-length 400).

    JSON form: ``{"error": {"status": 400, "message": ..., "type": ..., "code": ...}}``.
    """

    status: int = 400
    message: str = "scripted error"
    type: str = "invalid_request_error"
    code: str | None = None
    delay_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON form (see class docstring)."""
        return {
            "error": {
                "status": self.status,
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "delay_ms": self.delay_ms,
            }
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorReply:
        """Inverse of :meth:`to_json`."""
        err = data["error"]
        return cls(
            int(err.get("status", 400)),
            str(err.get("message", "scripted error")),
            str(err.get("type", "invalid_request_error")),
            err.get("code"),
            float(err.get("delay_ms", 0.0)),
        )


#: What rules/script/default_reply accept: text, a Reply, an ErrorReply, their JSON forms,
#: or a list of those (one per choice when ``n > 1``, cycled).
ReplySpec: TypeAlias = "str | Reply | ErrorReply | Mapping[str, Any] | Sequence[Any]"
#: What a handler may return; additionally a dict is the *whole* response JSON and None falls
#: through to rules/script/default.
HandlerResult: TypeAlias = "str | Reply | ErrorReply | dict[str, Any] | list[Any] | None"
Handler: TypeAlias = "Callable[[dict[str, Any]], HandlerResult | Awaitable[HandlerResult]]"
_Normalized: TypeAlias = "ErrorReply | list[Reply]"


def _normalize(spec: Any) -> _Normalized:
    """Turn a reply spec (object or JSON form) into an ErrorReply or a non-empty Reply list."""
    if isinstance(spec, ErrorReply):
        return spec
    if isinstance(spec, Reply):
        return [spec]
    if isinstance(spec, str):
        return [Reply(content=spec)]
    if isinstance(spec, Mapping):
        if isinstance(spec.get("error"), Mapping):
            return ErrorReply.from_json(spec)
        return [Reply.from_json(spec)]
    if isinstance(spec, (list, tuple)) and spec:
        replies: list[Reply] = []
        for item in spec:
            one = _normalize(item)
            if isinstance(one, ErrorReply):
                raise TypeError("an ErrorReply cannot be one choice among several")
            replies.extend(one)
        return replies
    raise TypeError(f"not a valid reply: {spec!r}")


def _to_json_spec(spec: Any) -> Any:
    """JSON-serializable form of a reply spec (for spawning a server process)."""
    if isinstance(spec, (Reply, ErrorReply)):
        return spec.to_json()
    if isinstance(spec, (list, tuple)):
        return [_to_json_spec(item) for item in spec]
    return spec


@dataclass
class _Generated:
    """One generated choice after stop strings and max_tokens are applied."""

    content: str | None
    tool_calls: list[ToolCall]
    token_ids: list[int]
    finish_reason: str


def _generate(reply: Reply, max_tokens: int | None, stops: list[str]) -> _Generated:
    """Apply stop strings and the token budget to a scripted reply."""
    content = reply.content
    calls = list(reply.tool_calls)
    stopped = False
    if stops and content:
        cuts = [content.find(s) for s in stops if s and s in content]
        if cuts:
            content, calls, stopped = content[: min(cuts)], [], True
    text = content or ""
    if calls:
        text += render_tool_calls((c.name, c.arguments_json) for c in calls)
    data = text.encode("utf-8")
    truncated = max_tokens is not None and len(data) > max_tokens
    if truncated:
        # Like a real model cut mid-generation: partial tool calls come back as plain text.
        data = data[: max(int(max_tokens or 0), 0)]
        content, calls = data.decode("utf-8", "ignore"), []
    ids = [b + TOKEN_ID_OFFSET for b in data]
    if reply.finish_reason is not None:
        finish = reply.finish_reason
    elif truncated:
        finish = "length"
    elif stopped:
        finish = "stop"
    elif calls:
        finish = "tool_calls"
    else:
        finish = "stop"
    return _Generated(content, calls, ids, finish)


# --------------------------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------------------------


class Stats(dict[str, Any]):
    """A snapshot of server counters; also callable (returns itself) so that thread-mode
    ``server.stats`` and subprocess-mode ``server.stats()`` can be used interchangeably.

    Keys: ``total`` (requests, control endpoints excluded), ``endpoints`` (per path),
    ``completed`` (2xx with a valid body), ``failures`` (injected faults by kind), ``errors``
    (other non-2xx answers), ``in_flight`` and ``max_in_flight``.
    """

    def __call__(self) -> Stats:
        return self


class _Counters:
    """Thread-safe request counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.total = self.completed = self.errors = self.max_in_flight = 0
        self.endpoints: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Zero everything except ``in_flight`` (``max_in_flight`` restarts from it)."""
        with self._lock:
            self.total = self.completed = self.errors = 0
            self.endpoints = {}
            self.failures = dict.fromkeys(FAULT_KINDS, 0)
            self.max_in_flight = self.in_flight

    def begin(self, path: str) -> None:
        with self._lock:
            self.total += 1
            self.endpoints[path] = self.endpoints.get(path, 0) + 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def outcome(self, status: int, fault: str | None) -> None:
        with self._lock:
            if fault is not None:
                self.failures[fault] += 1
            elif 200 <= status < 300:
                self.completed += 1
            else:
                self.errors += 1

    def snapshot(self) -> Stats:
        with self._lock:
            return Stats(
                total=self.total,
                endpoints=dict(self.endpoints),
                completed=self.completed,
                failures=dict(self.failures),
                errors=self.errors,
                in_flight=self.in_flight,
                max_in_flight=self.max_in_flight,
            )


# --------------------------------------------------------------------------------------------
# Request handling (transport independent)
# --------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What to do with one request: answer (status/body), ``drop`` or ``hang``."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    action: str = "respond"
    delay_s: float = 0.0
    fault: str | None = None


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> _Outcome:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return _Outcome(status, _json_bytes(body), headers)


def _check_kind(kind: str) -> str:
    kind = str(kind)
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
    return kind


class _Engine:
    """Scripting, fault injection and OpenAI-shaped response building."""

    def __init__(
        self,
        *,
        handler: Handler | None = None,
        rules: Sequence[Any] | None = None,
        script: Sequence[Any] | None = None,
        default_reply: Any = None,
        model_name: str = "scripted-model",
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
        failure_rate: float = 0.0,
        failure_kinds: Sequence[str] | None = None,
        hang_s: float = 30.0,
        seed: int | None = 0,
        record_requests: bool = True,
    ) -> None:
        self.counters = _Counters()
        self.requests: list[dict[str, Any]] = []
        self.handler_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._fail_next: deque[str] = deque()
        self._seq = 0
        self.model_name = model_name
        self.hang_s = float(hang_s)
        self.record_requests = record_requests
        self.rng = random.Random(seed)
        self.handler: Handler | None = None
        self.rules: list[tuple[re.Pattern[str], _Normalized]] = []
        self.script: deque[_Normalized] = deque()
        self.default_reply: _Normalized | None = None
        self.latency_ms = self.latency_jitter_ms = self.failure_rate = 0.0
        self.failure_kinds: tuple[str, ...] = FAULT_KINDS
        self.configure(
            handler=handler,
            rules=rules,
            script=script,
            default_reply=default_reply,
            latency_ms=latency_ms,
            latency_jitter_ms=latency_jitter_ms,
            failure_rate=failure_rate,
            failure_kinds=failure_kinds,
        )

    # -- configuration -------------------------------------------------------------------

    def configure(self, **options: Any) -> None:
        """Replace scripting / latency / fault options (only those given)."""
        with self._lock:
            if "handler" in options:
                self.handler = options.pop("handler")
            if "rules" in options:
                rules = options.pop("rules") or []
                compiled = []
                for rule in rules:
                    if isinstance(rule, Mapping):
                        pattern, spec = rule["pattern"], rule["reply"]
                    else:
                        pattern, spec = rule
                    compiled.append((re.compile(pattern), _normalize(spec)))
                self.rules = compiled
            if "script" in options:
                self.script = deque(_normalize(s) for s in options.pop("script") or [])
            if "default_reply" in options:
                spec = options.pop("default_reply")
                self.default_reply = None if spec is None else _normalize(spec)
            for name in ("latency_ms", "latency_jitter_ms", "failure_rate"):
                if name in options:
                    setattr(self, name, float(options.pop(name) or 0.0))
            if "failure_kinds" in options:
                kinds = options.pop("failure_kinds")
                self.failure_kinds = tuple(_check_kind(k) for k in (kinds or FAULT_KINDS))
                if not self.failure_kinds:
                    raise ValueError("failure_kinds must not be empty")
        if options:
            raise TypeError(f"unknown options: {sorted(options)}")

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` completion requests fail with ``kind``."""
        kind = _check_kind(kind)
        with self._lock:
            self._fail_next.extend([kind] * int(count))

    # -- dispatch ------------------------------------------------------------------------

    async def handle(self, method: str, target: str, body: bytes) -> _Outcome:
        """Answer one HTTP request."""
        path = target.split("?", 1)[0]
        if not path.startswith("/v1/") and path in ("/chat/completions", "/completions", "/models"):
            path = "/v1" + path
        if path in _CONTROL_PATHS:
            return self._control(method, path, body)
        self.counters.begin(path)
        try:
            outcome = await self._route(method, path, body)
        except Exception as exc:
            traceback.print_exc()
            outcome = _error(500, f"scripted server error: {exc!r}", "server_error")
        self.counters.outcome(outcome.status, outcome.fault)
        return outcome

    def end(self, path: str) -> None:
        """Mark the end of a request started by :meth:`handle` (not for control paths)."""
        if path not in _CONTROL_PATHS:
            self.counters.end()

    def _control(self, method: str, path: str, body: bytes) -> _Outcome:
        if path == "/_stats":
            return _Outcome(200, _json_bytes(self.counters.snapshot()))
        if path == "/_requests":
            return _Outcome(200, _json_bytes(self.requests))
        if method != "POST":
            return _error(405, f"{method} not allowed on {path}")
        try:
            data = json.loads(body or b"{}")
            if data.get("fail_next"):
                self.fail_next(data["fail_next"], int(data.get("count", 1)))
            if data.get("reset_stats"):
                self.counters.reset()
            if data.get("configure"):
                self.configure(**data["configure"])
        except (ValueError, TypeError, AttributeError, re.error) as exc:
            return _error(400, f"bad control request: {exc}")
        return _Outcome(200, b'{"ok":true}')

    async def _route(self, method: str, path: str, body: bytes) -> _Outcome:
        if path == "/health":
            return _Outcome(200, b'{"status":"ok"}')
        if path == "/v1/models":
            if method != "GET":
                return _error(405, f"{method} not allowed on {path}")
            models = wire.model_list([self.model_name], owned_by="verifiers-scripted")
            return _Outcome(200, _json_bytes(models))
        if path not in _COMPLETION_PATHS:
            return _error(404, f"no route for {path}", code="not_found")
        if method != "POST":
            return _error(405, f"{method} not allowed on {path}")
        try:
            request = json.loads(body)
        except ValueError as exc:
            return _error(400, f"request body is not valid JSON: {exc}")
        if not isinstance(request, dict):
            return _error(400, "request body must be a JSON object")
        request["_path"] = path
        if self.record_requests:
            self.requests.append(request)
        return await self._completion(path, request)

    def _draw(self) -> tuple[str | None, float, int]:
        """Per-request random draws, in arrival order: fault kind, base delay, sequence no."""
        with self._lock:
            self._seq += 1
            fault = None
            if self._fail_next:
                fault = self._fail_next.popleft()
            elif self.failure_rate > 0 and self.rng.random() < self.failure_rate:
                fault = self.rng.choice(self.failure_kinds)
            delay_ms = self.latency_ms
            if self.latency_jitter_ms > 0:
                delay_ms += self.rng.uniform(0.0, self.latency_jitter_ms)
            return fault, delay_ms / 1000.0, self._seq

    def _fault(self, kind: str, delay_s: float) -> _Outcome:
        if kind == "500":
            out = _error(500, "scripted internal server error", "server_error")
        elif kind == "429":
            out = _error(
                429,
                "scripted rate limit",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
                (("Retry-After", "0"),),
            )
        elif kind == "garbage":
            out = _Outcome(200, _GARBAGE_BODY)
        elif kind == "drop":
            out = _Outcome(action="drop")
        else:  # "timeout": hold the request; the client's own timeout is the latency
            return _Outcome(action="hang", fault=kind)
        out.delay_s, out.fault = delay_s, kind
        return out

    async def _resolve(self, request: dict[str, Any], chat: bool) -> _Normalized | dict[str, Any]:
        """First match wins: handler, rules, script, default_reply, echo."""
        handler = self.handler
        if handler is not None:
            try:
                result = handler(request)
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    result = await result
            except Exception as exc:
                self.handler_errors.append(exc)
                raise
            if isinstance(result, dict) and not isinstance(result.get("error"), Mapping):
                return result
            if result is not None:
                return _normalize(result)
        if chat:
            text = ""
            for message in reversed(request.get("messages") or []):
                if isinstance(message, Mapping) and message.get("role") == "user":
                    text = _content_text(message.get("content"))
                    break
        else:
            prompt = request.get("prompt")
            text = prompt if isinstance(prompt, str) else ""
            if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
                text = prompt[0]
        for pattern, spec in self.rules:
            if pattern.search(text):
                return spec
        with self._lock:
            if self.script:
                return self.script.popleft()
        if self.default_reply is not None:
            return self.default_reply
        return [Reply(content=text)]

    async def _completion(self, path: str, request: dict[str, Any]) -> _Outcome:
        chat = path == "/v1/chat/completions"
        if request.get("stream"):
            return _error(400, "streaming (stream=true) is not supported by the scripted server")
        if chat and not isinstance(request.get("messages"), list):
            return _error(400, "'messages' must be a list")
        if not chat and request.get("prompt") is None:
            return _error(400, "'prompt' is required")
        fault, delay_s, seq = self._draw()
        if fault is not None:
            return self._fault(fault, delay_s)
        try:
            spec = await self._resolve(request, chat)
        except Exception as exc:
            return _error(500, f"scripted handler raised {exc!r}", "server_error")
        if isinstance(spec, dict):  # a handler's complete response body
            return _Outcome(200, _json_bytes(spec), delay_s=delay_s)
        if isinstance(spec, ErrorReply):
            out = _error(spec.status, spec.message, spec.type, spec.code)
            out.delay_s = delay_s + spec.delay_ms / 1000.0
            return out
        body = self._chat_body(request, spec, seq) if chat else self._text_body(request, spec, seq)
        delay_s += max(r.delay_ms for r in spec) / 1000.0
        return _Outcome(200, _json_bytes(body), delay_s=delay_s)

    @staticmethod
    def _sampling(request: Mapping[str, Any], chat: bool) -> tuple[int, int | None, list[str]]:
        n = max(int(request.get("n") or 1), 1)
        max_tokens = request.get("max_completion_tokens") if chat else None
        if max_tokens is None:
            max_tokens = request.get("max_tokens")
        stop = request.get("stop")
        stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
        return n, (None if max_tokens is None else int(max_tokens)), stops

    def _chat_body(self, request: dict[str, Any], replies: list[Reply], seq: int) -> dict[str, Any]:
        n, max_tokens, stops = self._sampling(request, chat=True)
        prompt_bytes = render_chat_prompt(request["messages"]).encode("utf-8")
        want_ids = bool(request.get("return_token_ids"))
        want_logprobs = bool(request.get("logprobs"))
        top_k = int(request.get("top_logprobs") or 0)
        choices = []
        completion_tokens = 0
        for index in range(n):
            gen = _generate(replies[index % len(replies)], max_tokens, stops)
            completion_tokens += len(gen.token_ids)
            calls = [
                wire.tool_call(call.id or f"call_{seq}_{index}_{i}", call.name, call.arguments_json)
                for i, call in enumerate(gen.tool_calls)
            ]
            logprobs = None
            if want_logprobs:
                logprobs = wire.chat_logprobs(_chat_logprobs(gen.token_ids, top_k))
            choices.append(wire.chat_choice(
                index,
                wire.assistant_message(gen.content, calls or None),
                gen.finish_reason,
                logprobs,
                token_ids=gen.token_ids if want_ids else None,
            ))
        return wire.chat_completion(
            f"chatcmpl-scripted-{seq}",
            request.get("model") or self.model_name,
            choices,
            wire.usage(len(prompt_bytes), completion_tokens),
            prompt_token_ids=[b + TOKEN_ID_OFFSET for b in prompt_bytes] if want_ids else None,
        )

    def _text_body(self, request: dict[str, Any], replies: list[Reply], seq: int) -> dict[str, Any]:
        n, max_tokens, stops = self._sampling(request, chat=False)
        prompts = _prompt_ids(request["prompt"])
        want_ids = bool(request.get("return_token_ids"))
        logprobs = request.get("logprobs")
        choices = []
        completion_tokens = 0
        for p, prompt_ids in enumerate(prompts):
            for j in range(n):
                gen = _generate(replies[j % len(replies)], max_tokens, stops)
                completion_tokens += len(gen.token_ids)
                lp = None
                if logprobs is not None and logprobs is not False:
                    lp = _text_logprobs(gen.token_ids, int(logprobs))
                choices.append(wire.text_choice(
                    p * n + j,
                    decode(gen.token_ids),
                    gen.finish_reason,
                    lp,
                    prompt_token_ids=prompt_ids,
                    token_ids=gen.token_ids if want_ids else None,
                ))
        return wire.text_completion(
            f"cmpl-scripted-{seq}",
            request.get("model") or self.model_name,
            choices,
            wire.usage(sum(len(ids) for ids in prompts), completion_tokens),
            prompt_token_ids=(prompts[0] if prompts else []) if want_ids else None,
        )


def _prompt_ids(prompt: Any) -> list[list[int]]:
    """Token ids of each prompt of a completions request (str, [str], [int] or [[int]])."""
    if isinstance(prompt, str):
        return [encode(prompt)]
    if isinstance(prompt, list):
        if all(isinstance(t, int) for t in prompt):
            return [list(prompt)] if prompt else [[]]
        return [encode(p) if isinstance(p, str) else [int(t) for t in p] for p in prompt]
    raise ValueError("'prompt' must be a string, a list of strings or token ids")


def _chat_logprobs(ids: list[int], top_k: int) -> list[dict[str, Any]]:
    """Chat logprob entries of the toy tokens (each token is one byte, shown as latin-1)."""
    entries = []
    for tid in ids:
        byte = tid - TOKEN_ID_OFFSET
        top = []
        for j in range(min(top_k, 20)):
            alt = (byte + j) % 256
            top.append(wire.token_logprob(_TOKEN_STR[alt], _logprob(tid) - j, [alt]))
        entries.append(wire.token_logprob(_TOKEN_STR[byte], _logprob(tid), [byte], top))
    return entries


def _text_logprobs(ids: list[int], top_k: int) -> dict[str, Any]:
    """Legacy completion logprobs of the toy tokens (at least one alternative each)."""
    top = []
    for tid in ids:
        byte = tid - TOKEN_ID_OFFSET
        top.append(
            {_TOKEN_STR[(byte + j) % 256]: _logprob(tid) - j for j in range(max(min(top_k, 20), 1))}
        )
    tokens = [_TOKEN_STR[tid - TOKEN_ID_OFFSET] for tid in ids]
    return wire.text_logprobs(tokens, [_logprob(t) for t in ids], top)


# --------------------------------------------------------------------------------------------
# Minimal HTTP/1.1 server on asyncio streams
# --------------------------------------------------------------------------------------------


class _HttpServer:
    """Keep-alive HTTP/1.1 server (Content-Length or chunked request bodies)."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(
            self._connection, host="127.0.0.1", port=port, backlog=4096, limit=1 << 20
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        engine = self.engine
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # client closed the idle connection
                try:
                    method, target, keep_alive, headers = _parse_head(head)
                    body = await _read_body(reader, headers)
                except ValueError as exc:
                    writer.write(_encode(_error(400, f"bad HTTP request: {exc}"), False))
                    return
                path = target.split("?", 1)[0]
                outcome = await engine.handle(method, target, body)
                try:
                    if outcome.delay_s > 0:
                        await asyncio.sleep(outcome.delay_s)
                    if outcome.action == "drop":
                        return
                    if outcome.action == "hang":
                        await _hang(reader, engine.hang_s)
                        return
                    writer.write(_encode(outcome, keep_alive))
                    await writer.drain()
                finally:
                    engine.end(path)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()


def _parse_head(head: bytes) -> tuple[str, str, bool, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError(f"malformed request line {lines[0]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    # HTTP/1.1 keeps the connection open unless told otherwise; HTTP/1.0 closes by default.
    keep_alive = "close" not in connection if version != "HTTP/1.0" else "keep-alive" in connection
    return method, target, keep_alive, headers


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length") or 0)
    if length < 0:
        raise ValueError("negative Content-Length")
    return await reader.readexactly(length) if length else b""


def _encode(outcome: _Outcome, keep_alive: bool) -> bytes:
    reason = _REASONS.get(outcome.status, "Status")
    head = [
        f"HTTP/1.1 {outcome.status} {reason}\r\nContent-Type: application/json\r\n",
        f"Content-Length: {len(outcome.body)}\r\n",
    ]
    for name, value in outcome.headers:
        head.append(f"{name}: {value}\r\n")
    if not keep_alive:
        head.append("Connection: close\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + outcome.body


async def _hang(reader: asyncio.StreamReader, hang_s: float) -> None:
    """Hold a request unanswered until the client goes away or ``hang_s`` elapses."""

    async def until_eof() -> None:
        while await reader.read(65536):
            pass

    try:
        await asyncio.wait_for(until_eof(), hang_s)
    except TimeoutError:
        pass


# --------------------------------------------------------------------------------------------
# Public servers
# --------------------------------------------------------------------------------------------


class _ClientMixin:
    """``client()`` / ``sync_client()`` helpers shared by both server kinds."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        raise NotImplementedError

    def client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` pointed at this server (``max_retries=0`` by default)."""
        import openai

        options: dict[str, Any] = {"base_url": self.base_url, "api_key": "test", "max_retries": 0}
        options.update(kwargs)
        return openai.AsyncOpenAI(**options)

    def sync_client(self, **kwargs: Any) -> openai.OpenAI:
        """An ``openai.OpenAI`` pointed at this server (``max_retries=0`` by default)."""
        import openai

        options: dict[str, Any] = {"base_url": self.base_url, "api_key": "test", "max_retries": 0}
        options.update(kwargs)
        return openai.OpenAI(**options)


class ScriptedServer(_ClientMixin):
    """Scripted OpenAI-compatible server running on an event loop in a daemon thread.

    Answer selection (first match wins): ``handler(request)`` (returning None falls through),
    ``rules`` (``(regex, reply)`` searched in the last user message / the prompt), ``script``
    (consumed in order), ``default_reply``, else an echo of the last user message.
    ``latency_ms`` + uniform ``latency_jitter_ms`` delay every completion; with probability
    ``failure_rate`` a request fails with a kind drawn from ``failure_kinds`` (seeded by
    ``seed``). ``hang_s`` bounds how long a "timeout" fault holds a request (the connection is
    then closed unanswered). Faults and latency apply to the two completion endpoints only.

    The handler runs on the server's event loop: it may be ``async``; a blocking sync handler
    stalls every request. It receives the parsed body (with ``"_path"``) and may return a
    ``Reply``, a ``str``, an ``ErrorReply``, a list (one reply per choice), a dict (the whole
    response JSON) or None (fall through). If it raises, the client gets a 500 and the
    exception is kept in ``handler_errors``.
    """

    def __init__(
        self,
        *,
        handler: Handler | None = None,
        rules: Sequence[tuple[str, ReplySpec] | Mapping[str, Any]] | None = None,
        script: Sequence[ReplySpec] | None = None,
        default_reply: ReplySpec | None = None,
        model_name: str = "scripted-model",
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
        failure_rate: float = 0.0,
        failure_kinds: Sequence[str] | None = None,
        hang_s: float = 30.0,
        seed: int | None = 0,
        port: int = 0,
        record_requests: bool = True,
    ) -> None:
        self._engine = _Engine(
            handler=handler,
            rules=rules,
            script=script,
            default_reply=default_reply,
            model_name=model_name,
            latency_ms=latency_ms,
            latency_jitter_ms=latency_jitter_ms,
            failure_rate=failure_rate,
            failure_kinds=failure_kinds,
            hang_s=hang_s,
            seed=seed,
            record_requests=record_requests,
        )
        self._requested_port = port
        self._http = _HttpServer(self._engine)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Bind 127.0.0.1 and serve from a daemon thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("ScriptedServer already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._http.start(self._requested_port))
            except BaseException as exc:
                failure.append(exc)
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._http.close())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="ScriptedServer", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("ScriptedServer did not start within 30 s")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the server and all its connections, then join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # loop closed in between
                pass
        thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if not self._http.port:
            raise RuntimeError("ScriptedServer is not started")
        return self._http.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting, faults and introspection ---------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every completion request body received (parsed JSON plus a ``"_path"`` key)."""
        return self._engine.requests

    @property
    def handler_errors(self) -> list[BaseException]:
        """Exceptions raised by ``handler`` (each also answered with an HTTP 500)."""
        return self._engine.handler_errors

    @property
    def stats(self) -> Stats:
        """A snapshot of the counters (see :class:`Stats`)."""
        return self._engine.counters.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters (``max_in_flight`` restarts from the current ``in_flight``)."""
        self._engine.counters.reset()

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` completion requests fail with ``kind`` (see FAULT_KINDS)."""
        self._engine.fail_next(kind, count)

    def configure(self, **options: Any) -> None:
        """Change ``handler``, ``rules``, ``script``, ``default_reply``, ``latency_ms``,
        ``latency_jitter_ms``, ``failure_rate`` or ``failure_kinds`` while running."""
        self._engine.configure(**options)

    # -- subprocess mode -----------------------------------------------------------------

    @classmethod
    def spawn(
        cls,
        *,
        port: int = 0,
        startup_timeout: float = 30.0,
        record_requests: bool = False,
        **options: Any,
    ) -> SpawnedServer:
        """Run a server in a separate Python process and wait for it to listen.

        ``options`` are the constructor's (no ``handler``); replies may be given as objects
        or their JSON forms. The child runs this module with ``python -I`` and this
        package's folder first on its path (standard library only, so it starts fast).
        """
        if "handler" in options:
            raise TypeError("a handler cannot be sent to a spawned server; use rules/script")
        config: dict[str, Any] = dict(options, record_requests=record_requests)
        for key in ("script", "default_reply"):
            if key in config:
                config[key] = _to_json_spec(config[key])
        if "rules" in config:
            config["rules"] = [
                {"pattern": r["pattern"], "reply": _to_json_spec(r["reply"])}
                if isinstance(r, Mapping)
                else [r[0], _to_json_spec(r[1])]
                for r in config["rules"] or []
            ]
        _Engine(**config)  # validate here, where errors are easy to read
        command = [
            sys.executable,
            "-I",
            "-c",
            _CHILD,
            str(Path(__file__).resolve().parents[2]),
            "--port",
            str(port),
            "--config",
            json.dumps(config),
        ]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        line = _read_line(process, startup_timeout)
        if not line.startswith("READY "):
            _terminate(process, 5.0)
            raise RuntimeError(
                f"scripted server process did not start (exit code {process.returncode}, "
                f"first line {line!r})"
            )
        return SpawnedServer(process, int(line.split()[1]))


#: The spawned child's program: put the folder holding ``verifiers`` first, then serve.
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from verifiers.testing.server import main; main()"
)


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """First stdout line of ``process``, or "" on EOF/timeout."""
    result: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].strip() if result else ""


def _terminate(process: subprocess.Popen[str], timeout: float) -> None:
    """Terminate ``process`` (kill after ``timeout``) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


class SpawnedServer(_ClientMixin):
    """Handle on a scripted server running in a child process (see ``ScriptedServer.spawn``)."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self._root = f"http://127.0.0.1:{port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"{self._root}/v1"

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def _call(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(
            self._root + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> Stats:
        """Counters fetched from ``GET /_stats`` (see :class:`Stats`)."""
        return Stats(self._call("/_stats"))

    def reset_stats(self) -> None:
        """Zero the counters in the child."""
        self._call("/_control", {"reset_stats": True})

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the child's next ``count`` completion requests fail with ``kind``."""
        self._call("/_control", {"fail_next": _check_kind(kind), "count": count})

    def configure(self, **options: Any) -> None:
        """Change scripting/latency/fault options in the child (JSON-serializable values)."""
        for key in ("script", "default_reply"):
            if key in options:
                options[key] = _to_json_spec(options[key])
        if "rules" in options:
            options["rules"] = [[r[0], _to_json_spec(r[1])] for r in options["rules"] or []]
        self._call("/_control", {"configure": options})

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recorded request bodies (only if spawned with ``record_requests=True``)."""
        return list(self._call("/_requests"))

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the child via its Popen handle, killing it after ``timeout`` seconds."""
        _terminate(self.process, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Command line (subprocess mode)
# --------------------------------------------------------------------------------------------


async def _serve(port: int, config: dict[str, Any]) -> None:
    http = _HttpServer(_Engine(**config))
    bound = await http.start(port)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, done.set)
        except (NotImplementedError, RuntimeError):  # e.g. Windows
            pass
    print(f"READY {bound}", flush=True)
    try:
        await done.wait()
    finally:
        await http.close()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m verifiers.testing.server --port 0 --config '<json>'``; prints ``READY <port>``."""
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default="{}", help="JSON object of server options")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.port, json.loads(args.config)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
