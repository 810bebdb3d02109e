"""A small HTTP/1.1 client for JSON POSTs to plain ``http://`` endpoints, on asyncio
protocols.

The lean path (:mod:`verifiers.transport`) sends thousands of small requests to local
inference servers; per request, aiohttp's client spends several times what the exchange
itself needs here. This client does only what those exchanges use: one ``POST`` with a
``Content-Length`` body, keep-alive connections pooled per event loop and per
``(host, port)``, and responses framed by ``Content-Length``, ``chunked`` or the end of the
connection (``gzip`` / ``deflate`` bodies are decoded). TLS, proxies and anything else stay
with aiohttp: :func:`covers` says which URLs this client takes.

A connection that sat in the pool for a second or more and that the server closes before
sending any byte of the answer (its keep-alive limit met our request on the way) is
retried once on a new connection; every other failure is raised as :class:`~verifiers.transport.ConnectionFailedError`,
:class:`~verifiers.transport.RequestTimeoutError` or
:class:`~verifiers.transport.MalformedResponseError` for the caller's retry policy.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
import weakref
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from verifiers.utils.async_utils import at_loop_end

__all__ = ["Http1Error", "covers", "post"]

_MAX_HEAD = 64 * 1024  # bytes of status line and headers accepted
_CONNECTION_LIMIT = 1000  # per event loop, as the openai client's own pool
#: A pooled connection idle this long may have met the server's keep-alive limit (2 s in
#: gunicorn, 5 s in uvicorn and node): if it is closed before any byte of the answer, the
#: request is sent once more on a new connection. Sooner than that, a closed connection
#: is the server's doing and is reported (the caller's retry policy decides).
_STALE_AFTER_S = 1.0


class Http1Error(Exception):
    """A failed exchange: ``kind`` is ``"connection"``, ``"timeout"`` or ``"protocol"``."""

    def __init__(self, kind: str, message: str, fresh: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.fresh = fresh  # nothing of an answer arrived on a reused connection: retry


@functools.lru_cache(maxsize=256)
def covers(url: str) -> bool:
    """Whether :func:`post` can send to ``url``: ``http://``, no user info in it."""
    parts = urlsplit(url)
    return parts.scheme == "http" and bool(parts.hostname) and "@" not in parts.netloc


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0  # when it went back to the pool
        self.answer: asyncio.Future[tuple[int, dict[str, str], bytes, bool]] | None = None
        self._buffer = bytearray()
        self._head: tuple[int, dict[str, str], bool] | None = None
        self._length: int | None = None  # None: chunked or until the connection closes
        self._chunked = False
        self.last_activity = 0.0

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        if self.answer is None or self.answer.done():
            self._fail(Http1Error("protocol", "the server sent bytes nobody asked for"))
            return
        self._buffer += data
        try:
            self._advance(eof=False)
        except Http1Error as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        if self.answer is not None and not self.answer.done():
            try:
                self._advance(eof=True)
            except Http1Error as exc:
                self._fail(exc)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            fresh = self._maybe_stale() and not self._buffer and self._head is None
            reason = f": {exc}" if exc else ""
            self.answer.set_exception(Http1Error(
                "connection", f"the server closed the connection before the response was "
                f"complete{reason}", fresh=fresh))

    def _maybe_stale(self) -> bool:
        return self.reused and self.last_activity - self.idle_since >= _STALE_AFTER_S

    # -- one exchange ---------------------------------------------------------------------

    def send(self, request: bytes, answer: asyncio.Future) -> None:
        self.answer = answer
        self._buffer.clear()
        self._head = None
        self.last_activity = time.monotonic()
        assert self.transport is not None
        self.transport.write(request)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Http1Error) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)
        self.close()

    def _advance(self, eof: bool) -> None:
        buffer = self._buffer
        while self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    raise Http1Error("protocol", "the response headers are over 64 KiB")
                if eof:
                    raise Http1Error("connection", "the server closed the connection inside "
                                     "the response headers",
                                     fresh=self._maybe_stale() and not buffer)
                return
            status, headers, keep_alive = _parse_head(bytes(buffer[:end]))
            del buffer[:end + 4]
            if 100 <= status < 200:  # informational (100 Continue): the answer follows
                continue
            self._head = (status, headers, keep_alive)
            self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            length = headers.get("content-length")
            if status in (204, 304):
                self._chunked, self._length = False, 0
            elif self._chunked:
                self._length = None
            elif length is not None:
                try:
                    self._length = int(length)
                except ValueError:
                    raise Http1Error("protocol", f"bad Content-Length {length!r}") from None
                if self._length < 0:
                    raise Http1Error("protocol", f"bad Content-Length {length!r}")
            else:
                self._length = None
                self._head = (status, headers, False)  # the body ends with the connection
        status, headers, keep_alive = self._head
        if self._chunked:
            body = _dechunk(buffer)
            if body is None:
                if eof:
                    raise Http1Error("connection", "the server closed the connection inside "
                                     "a chunked body")
                return
        elif self._length is not None:
            if len(buffer) < self._length:
                if eof:
                    raise Http1Error("connection", f"the server closed the connection after "
                                     f"{len(buffer)} of {self._length} body bytes")
                return
            body = bytes(buffer[:self._length])
            if len(buffer) > self._length:
                keep_alive = False  # bytes past the answer: do not reuse this connection
        else:
            if not eof:
                return
            body = bytes(buffer)
        assert self.answer is not None
        self.answer.set_result((status, headers, _decoded(body, headers), keep_alive))


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise Http1Error("protocol", f"not an HTTP/1.x status line: {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise Http1Error("protocol", f"a malformed header line: {line[:100]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    connection = headers.get("connection", "").lower()
    keep_alive = ("close" not in connection if parts[0] == "HTTP/1.1"
                  else "keep-alive" in connection)
    return int(parts[1]), headers, keep_alive


def _dechunk(buffer: bytearray) -> bytes | None:
    """The whole body of a chunked message, or ``None`` while it is incomplete."""
    out = bytearray()
    at = 0
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size_text = bytes(buffer[at:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise Http1Error("protocol", f"bad chunk size {size_text[:20]!r}") from None
        at = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", at - 2)
            return bytes(out) if trailer_end >= 0 else None
        if len(buffer) < at + size + 2:
            return None
        out += buffer[at:at + size]
        at += size + 2


def _decoded(body: bytes, headers: Mapping[str, str]) -> bytes:
    encoding = headers.get("content-encoding", "identity").lower().strip()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise Http1Error("protocol", f"a {encoding} body that does not decode: {exc}") from None
    raise Http1Error("protocol", f"a body in an encoding we did not ask for: {encoding!r}")


# -- the pool: one per event loop ---------------------------------------------------------

class _Pool:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.idle: dict[tuple[str, int], list[_Connection]] = collections.defaultdict(list)
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False
        self.closer: Any = None  # the handle that closes the pool with its loop

    def _reuse(self, key: tuple[str, int]) -> _Connection | None:
        """An open idle connection to ``key``; closed ones met on the way are dropped."""
        idle = self.idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                connection.reused = True
                return connection
            self.open -= 1
        return None

    async def take(self, host: str, port: int, connect_timeout: float | None) -> _Connection:
        reused = self._reuse((host, port))
        if reused is not None:
            return reused
        while self.open >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: the turn goes to the next waiter
                raise
            reused = self._reuse((host, port))
            if reused is not None:
                return reused
        self.open += 1
        loop = asyncio.get_running_loop()
        try:
            if connect_timeout is None:
                _, connection = await loop.create_connection(_Connection, host, port)
            else:
                _, connection = await asyncio.wait_for(
                    loop.create_connection(_Connection, host, port), connect_timeout)
        except BaseException:
            self.open -= 1
            self._wake()
            raise
        return connection

    def give_back(self, key: tuple[str, int], connection: _Connection, reusable: bool) -> None:
        if reusable and not connection.closed and not self.closed:
            connection.answer = None
            connection.reused = False
            connection.idle_since = time.monotonic()
            self.idle[key].append(connection)
        else:
            connection.close()
            self.open -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()


_POOLS: weakref.WeakKeyDictionary[Any, _Pool] = weakref.WeakKeyDictionary()


async def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None or pool.closed:
        pool = _Pool(_CONNECTION_LIMIT)

        def close() -> None:  # the pool's connections close with their loop
            pool.close()
            _POOLS.pop(loop, None)

        pool.closer = await at_loop_end(close)
        _POOLS[loop] = pool
    return pool


# -- one request ----------------------------------------------------------------------------

_DEFAULT_HEADERS = (("Content-Type", "application/json"), ("Accept", "application/json"))


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[str, int, str, str]:
    """(host, port, request target, Host header) of ``url``."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "", parts.port or 80, target, parts.netloc


@functools.lru_cache(maxsize=256)
def _header_block(items: tuple[tuple[str, str], ...]) -> bytes:
    given = {name.lower() for name, _ in items}
    lines = [f"{name}: {value}" for name, value in _DEFAULT_HEADERS if name.lower() not in given]
    for name, value in items:
        if not name or ":" in name or "\r" in name or "\n" in name or "\r" in value \
                or "\n" in value:
            raise ValueError(f"header {name!r} cannot be sent as it is")
        if name.lower() in ("content-length", "transfer-encoding", "host"):
            continue
        lines.append(f"{name}: {value}")
    return ("".join(line + "\r\n" for line in lines)).encode("latin-1")


def request_bytes(url: str, headers: Mapping[str, str], body: bytes) -> tuple[str, int, bytes]:
    """(host, port, the request's bytes) for a JSON ``POST`` of ``body`` to ``url``.
    Raises ``ValueError`` for a header that cannot be sent as it is (a line break in it,
    characters outside Latin-1)."""
    host, port, target, netloc = _target(url)
    items = tuple(headers.items())
    for name, value in items:
        if type(name) is not str or type(value) is not str:
            raise ValueError(f"header {name!r}: {value!r} is not a string")
    head = b"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n" % (
        target.encode("latin-1"), netloc.encode("latin-1"),
        _header_block(items), len(body))
    return host, port, head + body


async def post(url: str, headers: Mapping[str, str], body: bytes, *,
               total: float | None = None, connect: float | None = None,
               read: float | None = None) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` to ``url``: (status, headers with lower-case names, body bytes).

    ``total``: seconds for the whole exchange; ``connect``: seconds to open a connection;
    ``read``: seconds the server may stay silent while the answer is awaited (httpx's
    ``read`` timeout). Raises :class:`Http1Error` and ``ValueError`` (see
    :func:`request_bytes`)."""
    host, port, request = request_bytes(url, headers, body)
    pool = await _pool()
    key = (host, port)
    loop = asyncio.get_running_loop()
    deadline = None if total is None else loop.time() + total
    for attempt in (0, 1):
        connect_limit = connect
        if deadline is not None:
            left = deadline - loop.time()
            connect_limit = left if connect_limit is None else min(connect_limit, left)
        try:
            connection = await pool.take(host, port, connect_limit)
        except TimeoutError:
            raise Http1Error("timeout", f"no connection to {host}:{port} within "
                             f"{connect_limit:g} s") from None
        except OSError as exc:
            raise Http1Error("connection", f"cannot connect to {host}:{port}: {exc}") from None
        answer: asyncio.Future = loop.create_future()
        watch = _Watch(loop, connection, answer, deadline, read)
        try:
            connection.send(request, answer)
            status, response_headers, raw, keep_alive = await answer
        except Http1Error as exc:
            pool.give_back(key, connection, reusable=False)
            if exc.fresh and attempt == 0 and exc.kind == "connection":
                continue  # a keep-alive connection the server had just closed
            raise
        except BaseException:  # cancelled: the connection is mid-exchange, drop it
            pool.give_back(key, connection, reusable=False)
            raise
        finally:
            watch.cancel()
        pool.give_back(key, connection, reusable=keep_alive)
        return status, response_headers, raw
    raise AssertionError("unreachable")  # pragma: no cover


class _Watch:
    """Fails the exchange when the total deadline passes or the server has been silent
    for ``read`` seconds; one timer, moved forward only when it fires early."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connection: _Connection,
                 answer: asyncio.Future, deadline: float | None, read: float | None) -> None:
        self.loop, self.connection, self.answer = loop, connection, answer
        self.deadline, self.read = deadline, read
        self.handle: asyncio.TimerHandle | None = None
        self._arm(loop.time())

    def _arm(self, now: float) -> None:
        when = self.deadline
        if self.read is not None:
            silent_until = now + self.read
            when = silent_until if when is None else min(when, silent_until)
        if when is not None:
            self.handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        if self.answer.done():
            return
        now = self.loop.time()
        if self.deadline is not None and now >= self.deadline:
            message = "no complete answer in time"
        else:
            silent = time.monotonic() - self.connection.last_activity
            if self.read is not None and silent < self.read:
                self._arm(now - silent)  # bytes came since: wait from the last of them
                return
            message = f"the server sent nothing for {self.read:g} s"
        self.answer.set_exception(Http1Error("timeout", message))
        self.connection.close()

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
