"""One OpenAI-compatible client over several servers that serve the same model.

    client = vf.MultiServerClient(["http://10.0.0.2:8000/v1", "http://10.0.0.3:8000/v1"])
    results = env.evaluate(client, "my-model", num_examples=1000, max_concurrent=512)

Each request goes to the server with the fewest requests in flight from this client (ties
in turn), so rollouts spread over the servers. A request that fails because of its server
(connection refused or reset, a timeout, HTTP 5xx) is sent at once to the next server;
that server is then skipped for ``cooldown`` seconds (used again only if no other is up).
HTTP 429 moves the request on without marking the server down. Errors that are the
request's own (HTTP 4xx) are raised as they are. When every server failed the request,
the last error is raised, and the rollout's retry policy (:class:`verifiers.RetryPolicy`)
backs off and tries again. A multi-turn rollout may thus continue on another server when
its server goes away.

Like :func:`verifiers.clients.make_async_client`'s clients, it is used from any event loop:
each server's connections belong to the loop that opened them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MultiServerClient", "split_base_urls"]


def split_base_urls(base_urls: str | Sequence[str]) -> list[str]:
    """A list of base URLs from a list, or a string of URLs separated by commas."""
    items = base_urls.split(",") if isinstance(base_urls, str) else list(base_urls)
    urls = [str(u).strip().rstrip("/") for u in items if str(u).strip()]
    if not urls:
        raise ValueError("Give at least one server URL, e.g. 'http://127.0.0.1:8000/v1'.")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Server URL {url!r} must start with http:// or https://.")
    if len(set(urls)) != len(urls):
        raise ValueError(f"A server URL is listed twice: {urls}.")
    return urls


@dataclass
class _Server:
    base_url: str
    client: Any
    in_flight: int = 0
    down_until: float = 0.0
    removed: bool = False
    requests: int = 0
    failures: int = 0
    last_error: str | None = None
    order: int = field(default=0)


def _server_failure(exc: BaseException) -> str | None:
    """``"down"`` when ``exc`` is the server's failure, ``"busy"`` for HTTP 429, else None."""
    import openai

    if isinstance(exc, openai.APIConnectionError | TimeoutError):  # includes APITimeoutError
        return "down"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "busy"
        if exc.status_code >= 500:
            return "down"
    return None


class _Endpoint:
    def __init__(self, owner: MultiServerClient, kind: str) -> None:
        self._owner = owner
        self._kind = kind

    async def create(self, **kwargs: Any) -> Any:
        return await self._owner._call(self._kind, kwargs)


class _Chat:
    def __init__(self, owner: MultiServerClient) -> None:
        self.completions = _Endpoint(owner, "chat")


class MultiServerClient:
    """An async OpenAI-compatible client (``chat.completions.create``,
    ``completions.create``) spreading requests over ``base_urls`` (a list, or URLs
    separated by commas), failing over between them (see the module's docstring)."""

    def __init__(self, base_urls: str | Sequence[str], api_key: str = "EMPTY", *,
                 timeout: float | None = None, cooldown: float = 30.0) -> None:
        from verifiers.clients import make_async_client

        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0 seconds, got {cooldown}.")
        self.cooldown = cooldown
        self._servers = [_Server(url, make_async_client(url, api_key, timeout), order=i)
                         for i, url in enumerate(split_base_urls(base_urls))]
        self._turn = itertools.count()
        self.chat = _Chat(self)
        self.completions = _Endpoint(self, "completions")

    @property
    def base_urls(self) -> list[str]:
        return [s.base_url for s in self._servers if not s.removed]

    @property
    def base_url(self) -> str:
        """The servers' URLs, separated by commas (for logs and saved run settings)."""
        return ",".join(self.base_urls)

    def remove(self, base_url: str) -> None:
        """Stop sending requests to ``base_url`` (e.g. a server whose weights fell behind)."""
        for server in self._servers:
            if server.base_url == base_url.rstrip("/"):
                server.removed = True
                return
        raise ValueError(f"{base_url!r} is not one of {self.base_urls}.")

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per server: requests sent, failures, requests in flight, whether it is skipped now."""
        now = time.monotonic()
        return {s.base_url: {"requests": s.requests, "failures": s.failures,
                             "in_flight": s.in_flight, "down": s.down_until > now,
                             "removed": s.removed, "last_error": s.last_error}
                for s in self._servers}

    def _pick(self, tried: set[int]) -> _Server | None:
        now = time.monotonic()
        candidates = [s for s in self._servers if not s.removed and s.order not in tried]
        if not candidates:
            return None
        turn = next(self._turn)
        n = len(self._servers)
        # up servers before those cooling down; fewest in flight; ties in turn
        return min(candidates, key=lambda s: (s.down_until > now, s.in_flight,
                                              (s.order - turn) % n))

    async def _call(self, kind: str, kwargs: dict[str, Any]) -> Any:
        from verifiers.clients import client_for_loop

        tried: set[int] = set()
        last: BaseException | None = None
        while (server := self._pick(tried)) is not None:
            tried.add(server.order)
            server.in_flight += 1
            server.requests += 1
            try:
                client = await client_for_loop(server.client)
                target = client.chat.completions if kind == "chat" else client.completions
                response = await target.create(**kwargs)
            except Exception as exc:
                failure = _server_failure(exc)
                if failure is None:
                    raise
                server.failures += 1
                server.last_error = f"{type(exc).__name__}: {exc}"
                if failure == "down":
                    server.down_until = time.monotonic() + self.cooldown
                last = exc
                continue
            finally:
                server.in_flight -= 1
            server.down_until = 0.0
            return response
        if last is None:
            raise RuntimeError("MultiServerClient: every server was removed; nothing to send to.")
        raise last

    async def close(self) -> None:
        for server in self._servers:
            await server.client.close()
