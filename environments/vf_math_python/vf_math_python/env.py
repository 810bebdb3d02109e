"""The ``python`` tool and the ToolEnv that runs it (one sandbox per call or per rollout)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import verifiers as vf
from verifiers.types import State
from vf_math_python.sandbox import PythonSandbox, SandboxLimits

TOOL_NAME = "python"


def _tool_doc(limits: SandboxLimits, persistent: bool) -> str:
    memory = f"{limits.memory_mb} MB of memory"
    state = ("Variables and imports persist between calls." if persistent
             else "Each call starts a fresh interpreter: nothing persists between calls.")
    return (
        "Run Python 3 code in a sandbox and return what it prints, followed by the value "
        "of the last line (like a notebook cell). The standard library, sympy and numpy "
        f"are available. {state} Limits: {limits.timeout:g} s per call, {memory}, no "
        "network, no subprocesses, files only in the current folder.\n\n"
        "Args:\n    code: the Python source code to run.\n"
    )


def run_tool_call(sandbox: PythonSandbox, code: str) -> str:
    """Run ``code`` for the model: the output on success; raises a
    :class:`~vf_math_python.sandbox.SandboxError` (the model sees its message) on failure."""
    result = sandbox.run(code)
    result.raise_for_error(sandbox.limits.max_output_chars)
    return result.tool_message(sandbox.limits.max_output_chars)


def make_python_tool(
    limits: SandboxLimits | None = None, persistent: bool = False, **sandbox_options: Any
) -> Callable[[str], str]:
    """The ``python(code)`` tool function: a fresh sandboxed process per call.

    ``sandbox_options`` go to :class:`~vf_math_python.sandbox.PythonSandbox` (e.g.
    ``resource_limits="rlimit"``); a layer that cannot be set up raises
    :class:`~vf_math_python.errors.SandboxSetupError` here, before any rollout.

    (``persistent`` only changes the description the model reads; :class:`MathPythonEnv`
    routes calls to a per-rollout sandbox in that mode.)
    """
    limits = limits or SandboxLimits()
    # Fails here, at load time, when a layer cannot be set up (SandboxSetupError).
    PythonSandbox(limits, **sandbox_options)

    def python(code: str) -> str:
        with PythonSandbox(limits, **sandbox_options) as sandbox:
            return run_tool_call(sandbox, code)

    python.__doc__ = _tool_doc(limits, persistent)
    return python


class MathPythonEnv(vf.ToolEnv):
    """A ToolEnv with one sandboxed ``python`` tool.

    With ``persistent_python=True`` each rollout gets its own long-lived interpreter:
    ``setup_state`` gives the rollout a session id, the interpreter starts on the rollout's
    first python call (rollouts that never call one cost nothing), and ``cleanup_state``
    (which runs even when the rollout fails) kills it. Otherwise every call runs in a fresh
    process.
    """

    def __init__(
        self,
        sandbox_limits: SandboxLimits | None = None,
        persistent_python: bool = False,
        sandbox_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.sandbox_limits = sandbox_limits or SandboxLimits()
        self.persistent_python = persistent_python
        self.sandbox_options = dict(sandbox_options or {})
        tool = make_python_tool(self.sandbox_limits, persistent_python, **self.sandbox_options)
        limits = self.sandbox_limits
        kwargs.setdefault("tool_timeout", limits.timeout + limits.startup_timeout + 10)
        kwargs.setdefault("max_tool_output_chars", limits.max_output_chars + 5000)
        super().__init__(tools=[tool], **kwargs)
        self._sessions: dict[str, PythonSandbox] = {}

    def setup_state(self, state: State, **kwargs: Any) -> State:
        if self.persistent_python:
            state["python_session"] = uuid.uuid4().hex
        return state

    async def invoke_tool(self, tool: Callable[..., Any], arguments: dict[str, Any],
                      state: State) -> Any:
        session = state.get("python_session")
        if not (self.persistent_python and session and tool.__name__ == TOOL_NAME):
            return await super().invoke_tool(tool, arguments, state)
        sandbox = self._sessions.get(session)
        if sandbox is None:
            sandbox = PythonSandbox(self.sandbox_limits, persistent=True, **self.sandbox_options)
            self._sessions[session] = sandbox
        call = asyncio.to_thread(run_tool_call, sandbox, arguments["code"])
        return await asyncio.wait_for(call, self.tool_timeout) if self.tool_timeout else await call

    async def cleanup_state(self, state: State) -> None:
        sandbox = self._sessions.pop(state.get("python_session") or "", None)
        if sandbox is not None:
            await asyncio.to_thread(sandbox.close)

    @property
    def live_sessions(self) -> int:
        """Persistent interpreters currently running (0 when no rollout is in flight)."""
        return len(self._sessions)
