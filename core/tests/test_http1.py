"""The small HTTP/1.1 client against real servers on 127.0.0.1: framing (length, chunked,
end of connection), encodings, keep-alive reuse, a keep-alive connection closed under it,
time limits, malformed answers, the connection limit and cancellation."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading

import pytest

from verifiers import http1
from verifiers.http1 import Http1Error, covers, post, request_bytes


class RawServer:
    """A TCP server on 127.0.0.1 in its own thread; ``handler(reader, writer, state)`` is a
    coroutine run once per connection. ``connections`` counts connections accepted;
    ``open_now`` / ``most_open`` the ones open at once."""

    def __init__(self, handler):
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _serve(self, reader, writer):
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    def _run(self):
        self.loop = asyncio.new_event_loop()
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(self._cancel_connections())
        self.loop.close()

    @staticmethod
    async def _cancel_connections():
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


async def read_request(reader, server) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    server.requests.append(head + body)
    return body


def answer(body: bytes, status: int = 200, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (status, len(body), extra)) + body


def echo(body: bytes) -> bytes:
    return json.dumps({"got": json.loads(body)}).encode()


async def keep_alive_echo(reader, writer, server):
    while True:
        body = await read_request(reader, server)
        writer.write(answer(echo(body)))
        await writer.drain()


def run(coro):
    return asyncio.run(coro)


def test_keep_alive_connections_are_reused_and_the_request_is_what_we_sent():
    with RawServer(keep_alive_echo) as server:
        async def main():
            return [await post(server.url, {"Authorization": "Bearer k"}, b'{"n": %d}' % i)
                    for i in range(5)]

        results = run(main())
    assert [json.loads(body)["got"]["n"] for _, _, body in results] == list(range(5))
    assert all(status == 200 for status, _, _ in results)
    assert results[0][1]["content-type"] == "application/json"  # header names lower-cased
    assert server.connections == 1
    head = server.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in head
    assert b"Authorization: Bearer k" in head and b"Content-Type: application/json" in head


def test_chunked_bodies_with_trailers_and_gzip_are_decoded():
    payload = json.dumps({"text": "x" * 5000}).encode()
    packed = gzip.compress(payload)

    async def handler(reader, writer, server):
        await read_request(reader, server)
        chunks = [packed[i:i + 777] for i in range(0, len(packed), 777)]
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Encoding: gzip\r\n\r\n")
        for chunk in chunks:  # written piece by piece: framing must survive any split
            writer.write(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        await writer.drain()
        await keep_alive_echo(reader, writer, server)

    with RawServer(handler) as server:
        async def main():
            first = await post(server.url, {}, b"{}")
            second = await post(server.url, {}, b'{"again": 1}')
            return first, second

        first, second = run(main())
    assert first[2] == payload
    assert json.loads(second[2]) == {"got": {"again": 1}}
    assert server.connections == 1  # the chunked answer left the connection reusable


def test_a_body_that_ends_with_the_connection_and_connection_close():
    async def until_close(reader, writer, server):
        await read_request(reader, server)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + b'{"a": 1}')
        await writer.drain()

    async def with_close(reader, writer, server):
        await read_request(reader, server)
        writer.write(answer(b'{"b": 2}', extra=b"Connection: close\r\n"))
        await writer.drain()

    for handler, expected in ((until_close, b'{"a": 1}'), (with_close, b'{"b": 2}')):
        with RawServer(handler) as server:
            async def main():
                return [await post(server.url, {}, b"{}") for _ in range(3)]

            results = run(main())
        assert [body for _, _, body in results] == [expected] * 3
        assert server.connections == 3  # nothing reused that the server would not keep


def test_an_idle_connection_the_server_drops_is_retried_once_on_a_new_one(monkeypatch):
    monkeypatch.setattr(http1, "_STALE_AFTER_S", 0.2)

    async def one_answer_per_connection(reader, writer, server):
        await read_request(reader, server)
        writer.write(answer(b'{"ok": 1}'))  # says nothing about closing ...
        await writer.drain()
        await read_request(reader, server)  # ... then drops the next request unanswered

    with RawServer(one_answer_per_connection) as server:
        async def main():
            bodies = []
            for i in range(3):
                if i:
                    await asyncio.sleep(0.3)  # idle long enough to meet a keep-alive limit
                bodies.append((await post(server.url, {}, b"{}"))[2])
            with pytest.raises(Http1Error) as info:  # dropped at once: reported, not resent
                await post(server.url, {}, b"{}")
            assert info.value.kind == "connection"
            return bodies

        assert run(main()) == [b'{"ok": 1}'] * 3
    assert server.connections == 3  # each answered once and dropped the request after


def test_a_body_cut_short_is_a_connection_error_not_retried():
    async def short(reader, writer, server):
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\"")
        await writer.drain()

    with RawServer(short) as server, pytest.raises(Http1Error) as info:
        run(post(server.url, {}, b"{}"))
    assert info.value.kind == "connection" and "10 of 100 body bytes" in str(info.value)
    assert server.connections == 1


def test_silence_and_the_total_limit_raise_timeouts():
    async def slow(reader, writer, server):
        await read_request(reader, server)
        await asyncio.sleep(0.3)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}")  # half of it ...
        await writer.drain()
        await asyncio.sleep(30)

    with RawServer(slow) as server:
        with pytest.raises(Http1Error) as info:
            run(post(server.url, {}, b"{}", read=0.1))
        assert info.value.kind == "timeout" and "sent nothing for 0.1 s" in str(info.value)
        with pytest.raises(Http1Error) as info:  # bytes at 0.3 s keep read=0.5 alive ...
            run(post(server.url, {}, b"{}", read=0.5, total=1.0))
        assert info.value.kind == "timeout"  # ... until the silence after them
        with pytest.raises(Http1Error) as info:
            run(post(server.url, {}, b"{}", total=0.2))
        assert info.value.kind == "timeout" and "in time" in str(info.value)


def test_malformed_answers_are_protocol_errors():
    async def garbage(reader, writer, server):
        await read_request(reader, server)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    async def bad_length(reader, writer, server):
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n")
        await writer.drain()

    for handler, words in ((garbage, "not an HTTP/1.x status line"),
                           (bad_length, "bad Content-Length")):
        with RawServer(handler) as server, pytest.raises(Http1Error) as info:
            run(post(server.url, {}, b"{}"))
        assert info.value.kind == "protocol" and words in str(info.value)


def test_informational_answers_are_skipped_and_errors_keep_their_headers():
    async def handler(reader, writer, server):
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                     + answer(b'{"error": "busy"}', 503, b"Retry-After: 2\r\n"))
        await writer.drain()

    with RawServer(handler) as server:
        status, headers, body = run(post(server.url, {}, b"{}"))
    assert (status, headers["retry-after"], body) == (503, "2", b'{"error": "busy"}')


def test_nothing_listening_is_a_connection_error():
    with RawServer(keep_alive_echo) as server:
        url = server.url
    with pytest.raises(Http1Error) as info:
        run(post(url, {}, b"{}"))
    assert info.value.kind == "connection" and "cannot connect" in str(info.value)


def test_the_connection_limit_holds_and_waiting_requests_all_finish(monkeypatch):
    monkeypatch.setattr(http1, "_CONNECTION_LIMIT", 3)

    async def slow_echo(reader, writer, server):
        while True:
            body = await read_request(reader, server)
            await asyncio.sleep(0.02)
            writer.write(answer(echo(body)))
            await writer.drain()

    with RawServer(slow_echo) as server:
        async def main():
            return await asyncio.gather(*(post(server.url, {}, b'{"n": %d}' % i)
                                          for i in range(20)))

        results = run(main())
    assert sorted(json.loads(b)["got"]["n"] for _, _, b in results) == list(range(20))
    assert server.most_open <= 3 and server.connections == 3


def test_a_cancelled_request_drops_its_connection_and_others_go_on():
    async def handler(reader, writer, server):
        body = await read_request(reader, server)
        if json.loads(body).get("slow"):
            await asyncio.sleep(30)
        writer.write(answer(echo(body)))
        await writer.drain()
        await keep_alive_echo(reader, writer, server)

    with RawServer(handler) as server:
        async def main():
            slow = asyncio.create_task(post(server.url, {}, b'{"slow": 1}'))
            await asyncio.sleep(0.1)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            return await post(server.url, {}, b'{"n": 1}')

        status, _, body = run(main())
    assert status == 200 and json.loads(body) == {"got": {"n": 1}}
    assert server.connections == 2


def test_what_the_client_covers_and_headers_it_refuses():
    assert covers("http://127.0.0.1:8000/v1/chat/completions")
    assert not covers("https://api.openai.com/v1/chat/completions")
    assert not covers("http://user:secret@host/v1/x")
    for headers in ({"X-Evil": "a\r\nInjected: 1"}, {"Bad:Name": "x"}, {"X-None": None},
                    {"X-Text": "\u2713"}):
        with pytest.raises(ValueError):
            request_bytes("http://h/x", headers, b"")
    _, _, request = request_bytes("http://h:81/v1/x?q=1", {"Content-Length": "9",
                                                           "Accept": "text/plain"}, b"{}")
    assert request.startswith(b"POST /v1/x?q=1 HTTP/1.1\r\nHost: h:81\r\n")
    assert b"Content-Length: 2\r\n" in request and b"Content-Length: 9" not in request
    assert b"Accept: text/plain" in request and b"Accept: application/json" not in request
