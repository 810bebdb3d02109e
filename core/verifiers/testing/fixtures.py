"""Pytest fixtures for the scripted OpenAI-compatible server.

Registered automatically (the ``pytest11`` entry point of the verifiers package) wherever
verifiers is installed; do not add it to ``pytest_plugins`` as well. Then::

    def test_echo(scripted_server):
        client = scripted_server.sync_client()
        ...

    def test_custom(make_scripted_server):
        server = make_scripted_server(rules=[(r"2\\+2", "4")], latency_ms=10)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from verifiers.testing.server import ScriptedServer

__all__ = ["make_scripted_server", "scripted_server"]


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A started thread-mode :class:`ScriptedServer` with default options (echo replies)."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def make_scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    """Factory ``make_scripted_server(**options)`` -> started server; all are stopped at
    teardown."""
    servers: list[ScriptedServer] = []

    def factory(**options: Any) -> ScriptedServer:
        server = ScriptedServer(**options).start()
        servers.append(server)
        return server

    yield factory
    for server in reversed(servers):
        server.stop()
