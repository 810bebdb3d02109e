"""Testing utilities: a scripted OpenAI-compatible server, pytest fixtures, and small
datasets shipped for tests (:func:`fixture_data_dir`).

Use ``pytest_plugins = ["verifiers.testing.fixtures"]`` to get the ``scripted_server`` and
``make_scripted_server`` fixtures. Exports are resolved lazily so that
``python -m verifiers.testing.server`` runs without importing the module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verifiers.testing.fixture_data import fixture_data_dir
    from verifiers.testing.server import ErrorReply, Reply, ScriptedServer, SpawnedServer, ToolCall

_MODULES = {
    "ErrorReply": "verifiers.testing.server",
    "Reply": "verifiers.testing.server",
    "ScriptedServer": "verifiers.testing.server",
    "SpawnedServer": "verifiers.testing.server",
    "ToolCall": "verifiers.testing.server",
    "fixture_data_dir": "verifiers.testing.fixture_data",
}

__all__ = ["ErrorReply", "Reply", "ScriptedServer", "SpawnedServer", "ToolCall", "fixture_data_dir"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
