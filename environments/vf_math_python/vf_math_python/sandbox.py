"""Run model-written Python in a separate, restricted process.

>>> with PythonSandbox(SandboxLimits(timeout=5)) as box:
...     box.run("x = 6 * 7").ok, box.run("x").value
(True, '42')

A :class:`PythonSandbox` owns one worker process (``sandbox_worker.py``) in a fresh
bubblewrap sandbox (:mod:`vf_math_python.isolation`). ``persistent=True`` keeps the worker between calls (variables survive, like a
notebook); otherwise every :meth:`PythonSandbox.run` gets a fresh process. A worker that
overruns the wall-time limit, dies, or breaks the protocol is killed together with
everything it started, and a persistent sandbox starts a fresh one on the next call.

How each limit is enforced (and what is not isolated) is described in the README and in the
docstrings of :mod:`vf_math_python.sandbox_worker` and :mod:`vf_math_python.isolation`.
"""

from __future__ import annotations

import atexit
import base64
import json
import math
import os
import select
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

from vf_math_python.cgroups import SandboxCgroup, reclaim_stale
from vf_math_python.errors import (
    CodeError,
    LimitExceeded,
    ProcessDied,
    SandboxError,
    SandboxSetupError,
)
from vf_math_python.isolation import (
    WORKER_PATH,
    Isolation,
    bwrap_command,
    detect_isolation,
    throwaway_uid,
)
from vf_math_python.sandbox_worker import clean_text

__all__ = ["CodeError", "ExecutionResult", "LimitExceeded", "ProcessDied", "PythonSandbox",
           "SandboxError", "SandboxInfo", "SandboxLimits", "SandboxSetupError", "run_python"]

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
#: Puts itself into the sandbox's cgroup(s), then becomes bwrap: everything bwrap starts
#: is inside from its first instruction.
_JOIN_CGROUP = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; '
                'n=$((n-1)); done; exec "$@"')
_REMOVED_OPTIONS = ("namespaces", "cgroup", "drop_privileges")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed call (or, for ``cpu_budget_factor``, of a persistent session).

    Attributes:
        timeout: wall-clock seconds per call; the process is killed when it runs longer.
        cpu_time: CPU seconds per call (default: 80% of ``timeout``); raises inside the
            code, and the kernel kills the process about a second later if the code ignores
            that.
        memory_mb: memory in MiB: the memory cgroup's limit (everything the sandbox holds
            in RAM: heap, files in its ``/tmp`` and ``/dev/shm``) and the address-space
            limit (``RLIMIT_AS``, so large allocations fail with ``MemoryError``).
        max_output_chars: characters of printed output (stdout + stderr) kept per call.
        max_file_mb: largest file the code may write (``RLIMIT_FSIZE``), in MiB.
        disk_mb: size of each of the sandbox's two tmpfs mounts (``/tmp``, its working
            folder, and ``/dev/shm``), in MiB.
        max_processes: tasks (the interpreter's threads) in the pids cgroup; new
            processes are refused in any case.
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
    disk_mb: int = 64
    max_processes: int = 16
    max_open_files: int = 256
    startup_timeout: float = 30.0
    cpu_budget_factor: int = 50

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "max_output_chars", "max_file_mb", "disk_mb",
                     "max_processes", "max_open_files", "startup_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number, got {value!r}.")
        if self.cpu_time is not None and self.cpu_time <= 0:
            raise ValueError(f"SandboxLimits.cpu_time must be positive, got {self.cpu_time!r}.")
        if self.max_processes < 4:
            raise ValueError("SandboxLimits.max_processes must be at least 4 (the "
                             "interpreter and its helper threads count).")
        if self.memory_mb < 64:
            raise ValueError(f"SandboxLimits.memory_mb must be at least 64 (the interpreter "
                             f"itself needs about 30 MB), got {self.memory_mb!r}.")

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
    """The layers a started worker actually runs under (the host's view plus the worker's
    hello message)."""

    engine: str = ""
    namespaces: list[str] = field(default_factory=list)
    seccomp_filters: int | None = None
    memory_limit: str = ""
    process_limit: str = ""
    disk_limit: str = ""
    uid: int | None = None
    uid_dropped: bool = False
    capabilities: str = "none"
    no_new_privs: bool = False
    audit_hooks: bool = False
    rlimits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Worker:
    """One running sandbox: its bwrap process, pipes, output log and cgroup."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Any, req_w: int, resp_r: int,
                 cgroup: SandboxCgroup | None, info: SandboxInfo) -> None:
        self.proc = proc
        self.log = log
        self.req_w = req_w
        self.resp_r = resp_r
        self.cgroup = cgroup
        self.info = info
        self.closed = False

    def log_tail(self, limit: int = 2000) -> str:
        try:
            size = os.fstat(self.log.fileno()).st_size
            data = os.pread(self.log.fileno(), limit, max(0, size - limit))
            return clean_text(data.decode("utf-8", "replace")).strip()
        except (OSError, ValueError):
            return ""

    def kill(self, graceful: bool = False) -> None:
        """Stop the sandbox and everything in it.

        ``graceful``: first close the request pipe, so an idle worker exits by itself.
        Otherwise bwrap is killed, which kills the sandbox's PID namespace
        (``--die-with-parent``); then the cgroup is emptied and removed.
        """
        if self.closed:
            return
        self.closed = True
        _close_quietly(self.req_w)
        if not (graceful and _wait(self.proc, 2.0)):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _wait(self.proc, 5.0)
        if self.cgroup is not None:
            self.cgroup.destroy()
        _close_quietly(self.resp_r)
        self.log.close()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


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
            import what is installed here, e.g. sympy and numpy). Its prefix and import
            path are bound read-only into the sandbox.
        resource_limits: ``"cgroup"`` (default): memory and tasks are bounded by a
            per-sandbox cgroup, and the sandbox refuses to run where none can be made.
            ``"rlimit"``: an explicit, weaker mode for machines without one (an ordinary
            user without cgroup delegation); it warns, see the README.
        audit_hooks: install the audit hook that words refusals clearly (not a security
            layer; off in the tests that show the kernel layers hold on their own).

    Raises:
        SandboxSetupError: at construction, when a layer cannot be set up on this machine
            (which one, why, and how to fix it).
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        persistent: bool = False,
        python_executable: str | None = None,
        resource_limits: str = "cgroup",
        audit_hooks: bool = True,
        **removed: Any,
    ) -> None:
        for name in removed:
            if name in _REMOVED_OPTIONS:
                raise TypeError(
                    f"PythonSandbox({name}=...) is gone: the kernel layers (namespaces, "
                    "seccomp, cgroup, uid drop) are always on. Use resource_limits='rlimit' "
                    "where no cgroup can be made, audit_hooks=False to drop the hook.")
            raise TypeError(f"PythonSandbox() got an unexpected keyword argument {name!r}.")
        self.limits = limits or SandboxLimits()
        self.persistent = persistent
        self.python_executable = os.path.abspath(python_executable or sys.executable)
        self.isolation: Isolation = detect_isolation(self.python_executable)
        self.isolation.require(resource_limits)
        self.resource_limits = resource_limits
        self.audit_hooks = audit_hooks
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._lost_state = False
        self.last_info: SandboxInfo | None = None
        #: Host pid of the most recent sandbox's bwrap process, and its cgroup.
        self.last_pid: int | None = None
        self.last_cgroup: SandboxCgroup | None = None
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
        """Run ``code``; never raises for anything the code does (see the result's ``error``).

        Raises :class:`SandboxSetupError` when a sandbox cannot be started.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a string, got {type(code).__name__}.")
        with self._lock:
            restarted = False
            if self._worker is None:
                self._worker = self._spawn()
                restarted, self._lost_state = self._lost_state, False
            worker = self._worker
            result = self._call(worker, code)
            result.restarted = restarted
            if result.killed or not self.persistent:
                worker.kill()  # its answer is in: no need to wait for a clean exit
                self._worker = None
                self._lost_state = self.persistent and result.killed
                if self._lost_state:
                    result.restarted = True
            return result

    def _reply_limit(self) -> int:
        """Largest reply accepted, in bytes: output and value of ``max_output_chars`` each,
        a 4,000-character traceback, at 6 bytes per character (a JSON-escaped control
        character), plus room for the framing."""
        return 6 * (2 * self.limits.max_output_chars + 4500) + 65536

    def _call(self, worker: _Worker, code: str) -> ExecutionResult:
        start = time.monotonic()
        try:
            _write_message(worker.req_w, {"code": clean_text(code)})
        except OSError:
            return self._died(worker, start, "it stopped accepting input")
        deadline = start + self.limits.timeout + KILL_GRACE_S
        try:
            reply = _read_message(worker.resp_r, deadline, self._reply_limit())
        except TimeoutError:
            worker.kill()
            return ExecutionResult(
                error=f"The code did not stop within the wall-time limit of "
                      f"{self.limits.timeout:g} s and was killed.",
                error_type="WallTimeLimit", killed=True, wall_s=time.monotonic() - start)
        except (EOFError, ValueError) as exc:
            return self._died(worker, start, str(exc))
        value = reply.get("value")
        error = reply.get("error")
        error_type = reply.get("error_type")
        return ExecutionResult(
            output=clean_text(str(reply.get("output", ""))),
            value=None if value is None else clean_text(str(value)),
            error=None if error is None else clean_text(str(error)),
            error_type=None if error_type is None else clean_text(str(error_type)),
            dropped_chars=_int(reply.get("dropped", 0)),
            wall_s=time.monotonic() - start,
        )

    def _died(self, worker: _Worker, start: float, detail: str) -> ExecutionResult:
        try:
            code = worker.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        oom = worker.cgroup is not None and worker.cgroup.oom_killed()
        tail = worker.log_tail()
        worker.kill()
        if oom:
            reason, killed = (f"was killed by the kernel: it went over the memory limit of "
                              f"{self.limits.memory_mb} MB (heap, files in /tmp and "
                              f"/dev/shm count)"), True
        else:
            reason, killed = _exit_reason(code, self.limits, detail)
        message = f"The Python process {reason}."
        if tail:
            message += f"\nLast output of the process:\n{tail}"
        return ExecutionResult(error=message, error_type="Killed" if killed else "ProcessDied",
                               killed=True, wall_s=time.monotonic() - start)

    # -- starting a worker --------------------------------------------------------------
    def _spawn(self) -> _Worker:
        limits = self.limits
        iso = self.isolation
        uid = throwaway_uid() if iso.is_root else None
        cpu = limits.cpu_seconds
        cpu_hard = (math.ceil(cpu * limits.cpu_budget_factor) + 5 if self.persistent
                    else math.ceil(cpu) + 2)
        memory_bytes = int(limits.memory_mb) * 2**20
        disk_bytes = int(limits.disk_mb) * 2**20
        from vf_math_python.seccomp_filters import (
            base_filter,
            compile_bpf,
            no_new_processes_filter,
        )

        base_bpf, process_bpf = _filters(base_filter, no_new_processes_filter, compile_bpf)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        # Unlinked files: nothing is left on disk whatever happens to this process.
        log = tempfile.TemporaryFile(prefix="vf-sandbox-log-")  # noqa: SIM115 (the worker's)
        seccomp_file = tempfile.TemporaryFile(prefix="vf-sandbox-seccomp-")  # noqa: SIM115
        seccomp_file.write(base_bpf)
        seccomp_file.seek(0)
        cgroup = None
        proc = None
        try:
            if self.resource_limits == "cgroup":
                assert iso.cgroup is not None
                reclaim_stale(iso.cgroup)  # left by hosts that were killed with kill -9
                # +2: bwrap's own two processes live in the cgroup too.
                cgroup = SandboxCgroup.create(iso.cgroup, memory_bytes, limits.max_processes + 2)
            config = {
                "req_fd": req_r,
                "resp_fd": resp_w,
                "limits": {
                    "cpu_s": cpu,
                    "wall_s": float(limits.timeout),
                    "cpu_hard_s": cpu_hard,
                    "memory_bytes": memory_bytes,
                    "file_bytes": int(limits.max_file_mb) * 2**20,
                    "disk_bytes": disk_bytes,
                    "nofile": int(limits.max_open_files),
                    "nproc": int(limits.max_processes),
                },
                "max_output_chars": int(limits.max_output_chars),
                "uid": uid,
                "audit_hooks": self.audit_hooks,
                "seccomp_bpf": base64.b64encode(process_bpf).decode(),
            }
            command = [
                *bwrap_command(iso, WORKER_SCRIPT, disk_bytes, disk_bytes,
                               seccomp_file.fileno(), _child_env()),
                self.python_executable, "-I", "-B", WORKER_PATH, json.dumps(config),
            ]
            if cgroup is not None:
                command = ["/bin/sh", "-c", _JOIN_CGROUP, "sh", str(len(cgroup.procs_files)),
                           *cgroup.procs_files, *command]
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(req_r, resp_w, seccomp_file.fileno()), env=_child_env(),
                start_new_session=True, close_fds=True,
            )
        except BaseException:
            if proc is not None:
                proc.kill()
                proc.wait()
            if cgroup is not None:
                cgroup.destroy()
            for fd in (req_w, resp_r):
                os.close(fd)
            log.close()
            raise
        finally:
            for fd in (req_r, resp_w):
                os.close(fd)
            seccomp_file.close()
        worker = _Worker(proc, log, req_w, resp_r, cgroup, SandboxInfo())
        self.last_pid, self.last_cgroup = proc.pid, cgroup
        try:
            hello = _read_message(resp_r, time.monotonic() + limits.startup_timeout, 65536)
        except (TimeoutError, EOFError, ValueError) as exc:
            tail = worker.log_tail()
            worker.kill()
            raise SandboxSetupError(
                f"The sandbox did not start ({exc}); nothing was run. {tail}".strip()) from None
        if "setup_error" in hello:
            worker.kill()
            raise SandboxSetupError(f"The sandbox worker could not restrict itself, nothing "
                                    f"was run: {hello['setup_error']}")
        applied = hello.get("hello", {})
        description = iso.describe()
        worker.info = SandboxInfo(
            engine=str(description["engine"]),
            namespaces=list(description["namespaces"]),  # type: ignore[call-overload]
            seccomp_filters=applied.get("seccomp_filters"),
            memory_limit=(f"{limits.memory_mb} MB, memory cgroup ({iso.cgroup.describe()})"
                          if cgroup is not None and iso.cgroup is not None else
                          f"{limits.memory_mb} MB address space (RLIMIT_AS) + 2 x "
                          f"{limits.disk_mb} MB tmpfs; no memory cgroup"),
            process_limit=("no new processes (seccomp); "
                           + (f"{limits.max_processes} tasks (pids cgroup and RLIMIT_NPROC)"
                              if cgroup else f"{limits.max_processes} tasks (RLIMIT_NPROC)")),
            disk_limit=f"/tmp and /dev/shm tmpfs, {limits.disk_mb} MB each",
            uid=applied.get("uid"),
            uid_dropped=uid is not None and applied.get("uid") == uid,
            no_new_privs=bool(applied.get("no_new_privs")),
            audit_hooks=bool(applied.get("audit_hooks")),
            rlimits=list(applied.get("rlimits", [])),
            notes=list(iso.notes) + ([] if cgroup else [
                "resource_limits='rlimit': weaker memory bound (see the README)"]),
        )
        self.last_info = worker.info
        return worker

    def describe(self) -> SandboxInfo:
        """The layers in force, learned by starting a worker if none has run yet."""
        if self.last_info is None:
            with self._lock:
                worker = self._spawn()
                worker.kill(graceful=True)
        assert self.last_info is not None
        return self.last_info


_FILTERS: dict[str, bytes] = {}


def _filters(base: Any, process: Any, compile_bpf: Any) -> tuple[bytes, bytes]:
    """The two compiled seccomp programs (compiled once per process)."""
    if not _FILTERS:
        _FILTERS["base"] = compile_bpf(base())
        _FILTERS["process"] = compile_bpf(process())
    return _FILTERS["base"], _FILTERS["process"]


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


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


def _child_env() -> dict[str, str]:
    env = {"PATH": _SAFE_PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg", "PYTHONUTF8": "1"}
    env.update(dict.fromkeys(_THREAD_VARS, "1"))
    return env


def _exit_reason(code: int | None, limits: SandboxLimits, detail: str = "") -> tuple[str, bool]:
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
    if detail and "exited before answering" not in detail:
        return f"broke the reply protocol ({detail})", False
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
