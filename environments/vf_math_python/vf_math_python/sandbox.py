"""Run model-written Python in a separate, restricted process.

>>> with PythonSandbox(SandboxLimits(timeout=5)) as box:
...     box.run("x = 6 * 7").ok, box.run("x").value
(True, '42')

A :class:`PythonSandbox` owns one worker process (``sandbox_worker.py``) in a throwaway
folder. ``persistent=True`` keeps the worker between calls (variables survive, like a
notebook); otherwise every :meth:`PythonSandbox.run` gets a fresh process. A worker that
overruns the wall-time limit, dies, or breaks the protocol is killed together with
everything it started, and a persistent sandbox starts a fresh one on the next call.

How each limit is enforced (and what is not isolated) is described in the README and in the
docstrings of :mod:`vf_math_python.sandbox_worker` and :mod:`vf_math_python.isolation`.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vf_math_python.isolation import Isolation, SandboxCgroup, detect_isolation, throwaway_uid

#: Seconds the host waits past ``timeout`` (for the worker's own timer to stop the code and
#: reply) before it kills the process.
KILL_GRACE_S = 1.0
WORKER_SCRIPT = str(Path(__file__).with_name("sandbox_worker.py"))
#: Exceptions raised inside the code by the worker's own timers.
LIMIT_ERROR_TYPES = frozenset({"CPUTimeLimitExceeded", "WallTimeLimitExceeded"})
#: ``error_type`` of a process killed by the host at the wall-time limit, and of one the
#: kernel killed (SIGKILL: the CPU rlimit, or memory); other deaths are ``ProcessDied``.
KILLED_TYPES = frozenset({"WallTimeLimit", "Killed"})
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class SandboxError(Exception):
    """Base class of the errors the ``python`` tool reports to the model."""


class CodeError(SandboxError):
    """The code raised an exception (the message holds its output and traceback)."""


class LimitExceeded(SandboxError):
    """The process was killed: wall time, CPU time, memory, or it died unexpectedly."""


class ProcessDied(SandboxError):
    """The process ended without answering (e.g. ``os._exit`` or a crash in C code)."""


class SandboxSetupError(SandboxError):
    """The sandbox process could not be started with the requested restrictions."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed call (or, for ``cpu_budget_factor``, of a persistent session).

    Attributes:
        timeout: wall-clock seconds per call; the process is killed when it runs longer.
        cpu_time: CPU seconds per call (default: 80% of ``timeout``); raises inside the
            code, and the kernel kills the process about a second later if the code ignores
            that.
        memory_mb: address-space limit (``RLIMIT_AS``) in MiB.
        max_output_chars: characters of printed output (stdout + stderr) kept per call.
        max_file_mb: largest file the code may write (``RLIMIT_FSIZE``), in MiB.
        max_written_files: files the code may open for writing per process (audit hook).
        max_processes: processes + threads (pids cgroup; ``RLIMIT_NPROC`` after a uid drop).
        max_open_files: file descriptors (``RLIMIT_NOFILE``).
        startup_timeout: seconds to wait for a new worker to be ready.
        cpu_budget_factor: a persistent worker's total CPU is capped at this many calls'
            worth (``RLIMIT_CPU``); past it, the worker is killed and restarted.
    """

    timeout: float = 10.0
    cpu_time: float | None = None
    memory_mb: int = 512
    max_output_chars: int = 8000
    max_file_mb: int = 16
    max_written_files: int = 64
    max_processes: int = 16
    max_open_files: int = 256
    startup_timeout: float = 30.0
    cpu_budget_factor: int = 50

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "max_output_chars", "max_file_mb",
                     "max_written_files", "max_processes", "max_open_files", "startup_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number, got {value!r}.")
        if self.cpu_time is not None and self.cpu_time <= 0:
            raise ValueError(f"SandboxLimits.cpu_time must be positive, got {self.cpu_time!r}.")
        if self.max_processes < 4:
            raise ValueError("SandboxLimits.max_processes must be at least 4 (the "
                             "interpreter and its helper threads count).")

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds per call: ``cpu_time``, by default 80% of ``timeout`` (so a busy loop
        is stopped by the CPU timer, with a traceback, before the wall-clock timer)."""
        return float(self.cpu_time if self.cpu_time is not None else 0.8 * self.timeout)


@dataclass
class ExecutionResult:
    """What one call produced. ``error`` is a traceback or a kill reason, ``None`` on success."""

    output: str = ""
    value: str | None = None
    error: str | None = None
    error_type: str | None = None
    killed: bool = False
    dropped_chars: int = 0
    wall_s: float = 0.0
    restarted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def text(self, max_output_chars: int | None = None) -> str:
        """The output as the model sees it (printed text, then the last expression)."""
        parts = []
        if self.output:
            parts.append(self.output.rstrip("\n"))
        if self.dropped_chars:
            limit = f" (the limit is {max_output_chars} characters)" if max_output_chars else ""
            parts.append(f"[... {self.dropped_chars} more characters of output cut{limit}]")
        if self.value is not None:
            parts.append(self.value)
        return "\n".join(parts)

    def tool_message(self, max_output_chars: int | None = None) -> str:
        """The tool reply for a successful call."""
        return self.text(max_output_chars) or "(no output: print() the values you want to see)"

    def error_message(self, max_output_chars: int | None = None) -> str:
        output = self.text(max_output_chars)
        parts = [f"Output before the error:\n{output}"] if output else []
        parts.append(self.error or "")
        if self.restarted:
            parts.append("The Python session was restarted: variables and imports from "
                         "earlier calls are gone.")
        return "\n".join(parts)

    def raise_for_error(self, max_output_chars: int | None = None) -> None:
        if self.error is None:
            return
        if self.hit_limit:
            raise LimitExceeded(self.error_message(max_output_chars))
        if self.killed:
            raise ProcessDied(self.error_message(max_output_chars))
        raise CodeError(self.error_message(max_output_chars))

    @property
    def hit_limit(self) -> bool:
        """Was the code stopped by a sandbox limit (rather than failing on its own)?"""
        return self.error_type in LIMIT_ERROR_TYPES or self.error_type in KILLED_TYPES


@dataclass
class SandboxInfo:
    """The layers a started worker actually runs under (from its hello message)."""

    namespaces: bool = False
    cgroup: bool = False
    uid: int | None = None
    uid_dropped: bool = False
    kept_read_capability: bool = False
    audit_hooks: bool = False
    no_new_privs: bool = False
    rlimits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Worker:
    """One running worker process and its folder, pipes and cgroup."""

    def __init__(self, proc: subprocess.Popen[bytes], root: str, req_w: int, resp_r: int,
                 cgroup: SandboxCgroup | None, info: SandboxInfo) -> None:
        self.proc = proc
        self.root = root
        self.req_w = req_w
        self.resp_r = resp_r
        self.cgroup = cgroup
        self.info = info
        self.closed = False

    @property
    def workdir(self) -> str:
        return os.path.join(self.root, "work")

    def log_tail(self, limit: int = 2000) -> str:
        try:
            with open(os.path.join(self.root, "output.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - limit))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def kill(self, graceful: bool = False) -> None:
        """Stop the worker and everything it started; remove its folder.

        ``graceful``: first close the request pipe, so an idle worker exits by itself.
        Otherwise (or if it does not exit) the interpreter is killed first and its
        ``unshare`` parent is left to reap it, so no zombie is handed to the host's init;
        then the process group and the cgroup are swept.
        """
        if self.closed:
            return
        self.closed = True
        _close_quietly(self.req_w)
        if not (graceful and _wait(self.proc, 2.0)):
            for pid in _children(self.proc.pid):
                _kill_quietly(pid)
            if not _wait(self.proc, 2.0):
                _kill_quietly(self.proc.pid)
                _wait(self.proc, 5.0)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its process group
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is not None:
            self.cgroup.destroy()
        _close_quietly(self.resp_r)
        shutil.rmtree(self.root, ignore_errors=True)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the interpreter, when ``pid`` is ``unshare``)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class PythonSandbox:
    """Runs code in a sandboxed worker process; see the module docstring.

    Args:
        limits: the :class:`SandboxLimits`.
        persistent: keep one worker (and its variables) across calls.
        python_executable: interpreter for the code (default: this one, so the code can
            import what is installed here, e.g. sympy and numpy).
        namespaces, cgroup, drop_privileges, audit_hooks: turn a layer off (``True`` means
            "use it when the platform allows"); mostly for tests of the individual layers.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        persistent: bool = False,
        python_executable: str | None = None,
        namespaces: bool = True,
        cgroup: bool = True,
        drop_privileges: bool = True,
        audit_hooks: bool = True,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.persistent = persistent
        self.python_executable = python_executable or sys.executable
        self.isolation: Isolation = detect_isolation(self.python_executable)
        self.use_namespaces = namespaces and self.isolation.namespaces
        self.use_cgroup = cgroup and self.isolation.cgroup_base is not None
        self.drop_privileges = drop_privileges and self.isolation.can_drop_uid
        self.audit_hooks = audit_hooks
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._lost_state = False
        self.last_info: SandboxInfo | None = None
        #: The throwaway folder of the most recent worker (removed when it is killed).
        self.last_folder: str | None = None
        _LIVE.add(self)

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> PythonSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the worker (if any) and everything it started."""
        with self._lock:
            if self._worker is not None:
                self._worker.kill(graceful=True)
                self._worker = None

    def __del__(self) -> None:  # best effort; call close() or use `with`
        worker = getattr(self, "_worker", None)
        if worker is not None:
            try:
                worker.kill()
            except Exception:
                pass

    # -- running code -------------------------------------------------------------------
    def run(self, code: str) -> ExecutionResult:
        """Run ``code``; never raises for anything the code does (see the result's ``error``)."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a string, got {type(code).__name__}.")
        with self._lock:
            restarted = False
            if self._worker is None:
                self._worker = self._start()
                restarted, self._lost_state = self._lost_state, False
            worker = self._worker
            result = self._call(worker, code)
            result.restarted = restarted
            if result.killed or not self.persistent:
                worker.kill(graceful=not result.killed)
                self._worker = None
                self._lost_state = self.persistent and result.killed
                if self._lost_state:
                    result.restarted = True
            return result

    def _call(self, worker: _Worker, code: str) -> ExecutionResult:
        start = time.monotonic()
        try:
            _write_message(worker.req_w, {"code": code})
        except OSError:
            return self._died(worker, start, "it stopped accepting input")
        deadline = start + self.limits.timeout + KILL_GRACE_S
        limit = 4 * self.limits.max_output_chars + 65536
        try:
            reply = _read_message(worker.resp_r, deadline, limit)
        except TimeoutError:
            worker.kill()
            return ExecutionResult(
                error=f"The code did not stop within the wall-time limit of "
                      f"{self.limits.timeout:g} s and was killed.",
                error_type="WallTimeLimit", killed=True, wall_s=time.monotonic() - start)
        except (EOFError, ValueError) as exc:
            return self._died(worker, start, str(exc))
        return ExecutionResult(
            output=str(reply.get("output", "")),
            value=reply.get("value"),
            error=reply.get("error"),
            error_type=reply.get("error_type"),
            dropped_chars=int(reply.get("dropped", 0)),
            wall_s=time.monotonic() - start,
        )

    def _died(self, worker: _Worker, start: float, detail: str) -> ExecutionResult:
        try:
            code = worker.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        worker.kill()
        reason, killed = _exit_reason(code, self.limits)
        tail = worker.log_tail()
        message = f"The Python process {reason}."
        if tail:
            message += f"\nLast output of the process:\n{tail}"
        return ExecutionResult(error=message, error_type="Killed" if killed else "ProcessDied",
                               killed=True, wall_s=time.monotonic() - start)

    # -- starting a worker --------------------------------------------------------------
    def _start(self) -> _Worker:
        try:
            return self._spawn(drop=self.drop_privileges)
        except SandboxSetupError as exc:
            if not self.drop_privileges:
                raise
            # e.g. setuid refused inside a user namespace: run without the uid drop.
            self.drop_privileges = False
            worker = self._spawn(drop=False)
            worker.info.notes.append(f"uid drop failed ({exc}); running without it")
            return worker

    def _spawn(self, drop: bool) -> _Worker:
        limits = self.limits
        root = tempfile.mkdtemp(prefix="vf-sandbox-")
        os.chmod(root, 0o711)  # others may pass through, not list or create
        workdir = os.path.join(root, "work")
        os.mkdir(workdir, 0o700)
        uid = throwaway_uid() if drop else None
        if uid is not None:
            os.chown(workdir, uid, uid)
        log_fd = os.open(os.path.join(root, "output.log"), os.O_WRONLY | os.O_CREAT, 0o600)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        cgroup = None
        proc = None
        try:
            if self.use_cgroup:
                assert self.isolation.cgroup_base is not None
                cgroup = SandboxCgroup.create(self.isolation.cgroup_base, limits.max_processes)
            cpu = limits.cpu_seconds
            cpu_hard = (math.ceil(cpu * limits.cpu_budget_factor) + 5 if self.persistent
                        else math.ceil(cpu) + 2)
            config = {
                "req_fd": req_r,
                "resp_fd": resp_w,
                "limits": {
                    "cpu_s": cpu,
                    "wall_s": float(limits.timeout),
                    "cpu_hard_s": cpu_hard,
                    "memory_bytes": int(limits.memory_mb) * 2**20,
                    "file_bytes": int(limits.max_file_mb) * 2**20,
                    "nofile": int(limits.max_open_files),
                    "nproc": int(limits.max_processes) if uid is not None else None,
                },
                "max_output_chars": int(limits.max_output_chars),
                "max_written_files": int(limits.max_written_files),
                "cgroup_procs": cgroup.procs_file if cgroup else None,
                "uid": uid,
                "keep_read_cap": uid is not None and not self.isolation.interpreter_world_readable,
                "audit_hooks": self.audit_hooks,
            }
            prefix = list(self.isolation.unshare_prefix) if self.use_namespaces else []
            command = [*prefix, self.python_executable, "-I", "-B", WORKER_SCRIPT,
                       json.dumps(config)]
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
                pass_fds=(req_r, resp_w), cwd=workdir, env=_child_env(workdir),
                start_new_session=True, close_fds=True,
            )
        except BaseException:
            if proc is not None:
                proc.kill()
            if cgroup is not None:
                cgroup.destroy()
            for fd in (req_w, resp_r):
                os.close(fd)
            shutil.rmtree(root, ignore_errors=True)
            raise
        finally:
            for fd in (req_r, resp_w, log_fd):
                os.close(fd)
        worker = _Worker(proc, root, req_w, resp_r, cgroup, SandboxInfo())
        self.last_folder = root
        try:
            hello = _read_message(resp_r, time.monotonic() + limits.startup_timeout, 65536)
        except (TimeoutError, EOFError, ValueError) as exc:
            tail = worker.log_tail()
            worker.kill()
            raise SandboxSetupError(
                f"The sandbox worker did not start ({exc}). {tail}".strip()) from None
        if "setup_error" in hello:
            worker.kill()
            raise SandboxSetupError(f"The sandbox worker could not restrict itself: "
                                    f"{hello['setup_error']}")
        applied = hello.get("hello", {})
        worker.info = SandboxInfo(
            namespaces=bool(prefix),
            cgroup=bool(applied.get("cgroup")),
            uid=applied.get("uid"),
            uid_dropped=uid is not None and applied.get("uid") == uid,
            kept_read_capability=bool(config["keep_read_cap"]),
            audit_hooks=bool(applied.get("audit_hooks")),
            no_new_privs=bool(applied.get("no_new_privs")),
            rlimits=list(applied.get("rlimits", [])),
            notes=list(self.isolation.notes),
        )
        self.last_info = worker.info
        return worker

    def describe(self) -> SandboxInfo:
        """The layers in force, learned by starting a worker if none has run yet."""
        if self.last_info is None:
            worker = self._start()
            worker.kill()
        assert self.last_info is not None
        return self.last_info


_LIVE: weakref.WeakSet[PythonSandbox] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Kill the workers of sandboxes nobody closed before the interpreter exits."""
    for sandbox in list(_LIVE):
        try:
            sandbox.close()
        except Exception:
            pass


def run_python(code: str, limits: SandboxLimits | None = None, **options: Any) -> ExecutionResult:
    """Run ``code`` once in a fresh sandbox (see :class:`PythonSandbox` for ``options``)."""
    with PythonSandbox(limits, **options) as box:
        return box.run(code)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _child_env(workdir: str) -> dict[str, str]:
    env = {"PATH": _SAFE_PATH, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg"}
    env.update(dict.fromkeys(_THREAD_VARS, "1"))
    return env


def _exit_reason(code: int | None, limits: SandboxLimits) -> tuple[str, bool]:
    """Why the worker ended, and whether it was SIGKILLed (a limit, as far as we can tell)."""
    if code is None:
        return "stopped responding and was killed", True
    signum = -code if code < 0 else code - 128 if code > 128 else None
    if signum == signal.SIGKILL:
        return (f"was killed (SIGKILL): it exceeded a limit, most likely CPU time "
                f"({limits.cpu_seconds:g} s) or memory ({limits.memory_mb} MB)"), True
    if signum is not None and 0 < signum < 65:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"was killed by {name}", False
    return f"exited with status {code} before answering", False


def _write_message(fd: int, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode("utf-8")
    data = f"{len(body):08x}".encode() + body
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    chunks, remaining = [], n
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        if not poller.poll(max(1, math.ceil(left * 1000))):
            raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("it exited before answering")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_message(fd: int, deadline: float, limit: int) -> dict[str, Any]:
    header = _read_exact(fd, 8, deadline)
    try:
        size = int(header, 16)
    except ValueError:
        raise ValueError(f"it wrote garbage on its reply channel ({header!r})") from None
    if size > limit:
        raise ValueError(f"its reply was too large ({size} bytes)")
    message = json.loads(_read_exact(fd, size, deadline).decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError("its reply was not a JSON object")
    return message
