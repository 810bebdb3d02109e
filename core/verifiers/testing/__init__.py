"""Testing utilities: a scripted OpenAI-compatible server and pytest fixtures.

Use ``pytest_plugins = ["verifiers.testing.fixtures"]`` to get the ``scripted_server`` and
``make_scripted_server`` fixtures. Exports are resolved lazily so that
``python -m verifiers.testing.server`` runs without importing the module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verifiers.testing.server import ErrorReply, Reply, ScriptedServer, SpawnedServer, ToolCall

__all__ = ["ErrorReply", "Reply", "ScriptedServer", "SpawnedServer", "ToolCall"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("verifiers.testing.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
