"""Symbolic answer checks (math-verify, then sympy) in helper processes, under a hard time
limit.

math-verify's own timeouts use ``SIGALRM`` (main thread only) and sympy has none, so an
answer such as ``(x+1)^{9999}`` can keep a thread busy for minutes. Here each check runs in
a long-lived helper process (started on first use, reused afterwards); one that is still
busy when the limit is reached is killed (``SIGKILL``) and replaced, and the check raises
:class:`AnswerCheckTimeout`. The caller's thread only waits on a pipe, so an event loop
that awaits :func:`asyncio.to_thread` on it goes on with other work.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: Seconds one symbolic check may take.
DEFAULT_TIMEOUT_S = 3.0
#: Seconds a new helper process may take to import math-verify and sympy.
STARTUP_TIMEOUT_S = 120.0


class AnswerCheckTimeout(RuntimeError):
    """The symbolic check did not finish within its time limit and was stopped."""


class _Helper:
    """One helper process and its pipes."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from vf_math_python.answer_check import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        if self._read_line(time.monotonic() + STARTUP_TIMEOUT_S) != "ready":
            self.kill()
            raise RuntimeError("the answer-check helper process did not start")

    def _read_line(self, deadline: float) -> str | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            data += chunk
        return data.decode().strip()

    def check(self, predicted: str, reference: str, timeout: float) -> bool | None:
        """The helper's verdict, or ``None`` when it did not answer in time."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([predicted, reference]).encode() + b"\n")
        self.proc.stdin.flush()
        line = self._read_line(time.monotonic() + timeout)
        if line not in ("true", "false"):
            return None
        return line == "true"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:  # a request still buffered for a helper that is gone
                    pass


#: Helpers are started from this one long-lived thread: the kernel's parent-death signal
#: follows the thread that started a process, and the threads that ask for checks (an
#: event loop's executor) come and go.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vf-answer-check")


def _new_helper() -> _Helper:
    return _SPAWNER.submit(_Helper).result()


class SymbolicChecker:
    """A small pool of helper processes running :func:`symbolic_equivalent`.

    Args:
        timeout: seconds per check (the helper is killed past it).
        processes: checks that can run at the same time (more wait for a free helper).
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_S, processes: int = 2) -> None:
        if timeout <= 0 or processes < 1:
            raise ValueError("SymbolicChecker needs timeout > 0 and processes >= 1, got "
                             f"timeout={timeout!r}, processes={processes!r}.")
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(processes)
        self._idle: queue.SimpleQueue[_Helper] = queue.SimpleQueue()
        self._all: set[_Helper] = set()
        self._lock = threading.Lock()

    def equivalent(self, predicted: str, reference: str) -> bool:
        """Run the check; raises :class:`AnswerCheckTimeout` when it takes too long."""
        with self._slots:
            helper = self._take_helper()
            try:
                verdict = helper.check(predicted, reference, self.timeout)
            except OSError:  # the helper died under us (not a slow check): once more, fresh
                self._forget(helper)
                helper = self._take_helper()
                try:
                    verdict = helper.check(predicted, reference, self.timeout)
                except OSError:
                    verdict = None
            if verdict is None:
                with self._lock:
                    self._all.discard(helper)
                helper.kill()
                raise AnswerCheckTimeout(
                    f"checking {_short(predicted)} against {_short(reference)} with "
                    f"math-verify/sympy took longer than {self.timeout:g} s and was stopped")
            self._idle.put(helper)
            return verdict

    def _take_helper(self) -> _Helper:
        """An idle helper that is still running, else a new one."""
        while True:
            try:
                helper = self._idle.get_nowait()
            except queue.Empty:
                break
            if helper.alive():
                return helper
            self._forget(helper)
        helper = _new_helper()
        with self._lock:
            self._all.add(helper)
        return helper

    def _forget(self, helper: _Helper) -> None:
        with self._lock:
            self._all.discard(helper)
        helper.kill()

    def close(self) -> None:
        with self._lock:
            helpers, self._all = list(self._all), set()
        for helper in helpers:
            helper.kill()


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


_DEFAULT: SymbolicChecker | None = None
_DEFAULT_LOCK = threading.Lock()


def default_checker() -> SymbolicChecker:
    """The process-wide checker (3 s per check, two helpers)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SymbolicChecker()
        return _DEFAULT


@atexit.register
def _close_default() -> None:
    if _DEFAULT is not None:
        _DEFAULT.close()


def symbolic_equivalent(predicted: str, reference: str) -> bool:
    """math-verify, then sympy, on two normalized answers (no time limit: call it through
    a :class:`SymbolicChecker`)."""
    from vf_math_python.equivalence import math_verify_equivalent, sympy_equivalent

    return math_verify_equivalent(predicted, reference) or sympy_equivalent(predicted, reference)


def _die_with_parent() -> None:
    """Ask the kernel to kill this helper when its parent dies (even by ``kill -9``), so a
    runaway check does not outlive the process that wanted it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve() -> None:
    """The helper process: one JSON ``[predicted, reference]`` per line in, ``true`` or
    ``false`` per line out. Anything printed by the libraries goes to stderr."""
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        return
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    # Paid once here (under the start-up limit), not by the first check's time limit:
    # the imports, and math-verify building its LaTeX parser on first use.
    symbolic_equivalent("\\frac{x}{2}", "0.5 x")
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            predicted, reference = json.loads(line)
            verdict: Any = symbolic_equivalent(str(predicted), str(reference))
        except Exception:
            verdict = False
        out.write("true\n" if verdict else "false\n")
        out.flush()
