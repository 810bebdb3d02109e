"""The sandboxed Python worker: runs inside bubblewrap, standard library only.

The host (:mod:`vf_math_python.sandbox`) starts this file as
``python -I -B sandbox_worker.py '<json config>'`` inside a bubblewrap sandbox (namespaces,
minimal read-only root, seccomp, cgroup: see :mod:`vf_math_python.isolation`). Before any
model-written code runs, the worker, in this order:

1. sets resource limits: address space (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``), file
   size (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so writes fail with ``EFBIG``), open
   files, no core dumps, and after a uid drop processes + threads (``RLIMIT_NPROC``);
2. as root: switches to a throwaway uid (no groups), which clears the two capabilities
   bubblewrap left for that, and checks that no capability is left;
3. sets ``PR_SET_NO_NEW_PRIVS`` and adds the second seccomp filter (compiled by libseccomp
   on the host, passed in the config): no ``execve``, ``fork`` or non-thread ``clone`` from
   here on;
4. optionally installs an audit hook (PEP 578) whose only job is friendlier messages for
   process creation and sockets. It is not a security layer: the code can remove it, and
   the kernel refuses the same operations anyway.

Then it answers requests on a pipe: each is a piece of code, run in one namespace (which
persists across requests: the host decides whether a worker serves one call or a whole
rollout). CPU time per request is bounded by ``ITIMER_PROF`` and wall time by ``ITIMER_REAL``;
their signals raise :class:`CPUTimeLimitExceeded` / :class:`WallTimeLimitExceeded` inside the
running code (so the output so far and the line it was on come back). The host kills the
sandbox if it still has not answered a moment later.

Wire format, both directions: 8 ASCII hex digits (the byte length) then a UTF-8 JSON object.
Text is sent with lone surrogates replaced by U+FFFD, so it is always valid UTF-8.
"""

from __future__ import annotations

import ast
import io
import json
import linecache
import os
import resource
import signal
import sys
import traceback

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
HEADER = 8


class CPUTimeLimitExceeded(BaseException):
    """Raised inside the running code when it has used up its CPU seconds (a BaseException,
    so ``except Exception`` in the code does not swallow it)."""


class WallTimeLimitExceeded(BaseException):
    """Raised inside the running code when it has run for its wall-clock seconds (e.g. while
    sleeping or waiting); the host kills the process shortly after if it does not stop."""


class SandboxSetupError(Exception):
    """The worker could not apply a requested restriction."""


# --------------------------------------------------------------------------------------
# Wire protocol
# --------------------------------------------------------------------------------------


def read_message(fd: int) -> dict | None:
    """Read one message; ``None`` at end of file (the host went away)."""
    header = _read_exact(fd, HEADER)
    if header is None:
        return None
    body = _read_exact(fd, int(header, 16))
    if body is None:
        return None
    return json.loads(body.decode("utf-8"))


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (pairs become the character)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def write_message(fd: int, message: dict) -> None:
    message = {k: clean_text(v) if isinstance(v, str) else v for k, v in message.items()}
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    data = f"{len(body):08x}".encode() + body
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, remaining = [], n
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------------------
# Output capture
# --------------------------------------------------------------------------------------


class CappedOutput(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:  # type: ignore[override]
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.size
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
            self.dropped += len(text) - len(kept)
        else:
            self.dropped += len(text)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


# --------------------------------------------------------------------------------------
# Privileges and limits
# --------------------------------------------------------------------------------------


def _libc():  # type: ignore[no-untyped-def]
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _prctl(libc, option: int, value: int) -> None:  # type: ignore[no-untyped-def]
    import ctypes

    if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise SandboxSetupError(f"prctl({option}) failed: {os.strerror(errno)}")


def apply_limits(limits: dict) -> list[str]:
    """Set resource limits; returns the names of those applied."""
    applied = []

    def setlimit(name: str, value: int | None) -> None:
        if value is None:
            return
        kind = getattr(resource, name, None)
        if kind is None:
            return
        resource.setrlimit(kind, (value, value))
        applied.append(name)

    setlimit("RLIMIT_CORE", 0)
    setlimit("RLIMIT_CPU", limits.get("cpu_hard_s"))
    setlimit("RLIMIT_AS", limits.get("memory_bytes"))
    setlimit("RLIMIT_FSIZE", limits.get("file_bytes"))
    setlimit("RLIMIT_NOFILE", limits.get("nofile"))
    setlimit("RLIMIT_NPROC", limits.get("nproc"))
    return applied


def drop_privileges(uid: int) -> None:
    """Become ``uid`` (group ``uid``, no supplementary groups), irreversibly; no capability
    may be left afterwards."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid:
        raise SandboxSetupError(f"setuid({uid}) did not take effect")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise SandboxSetupError("could regain root after dropping privileges")


def capabilities() -> dict[str, int]:
    """The capability sets of this process (from /proc/self/status)."""
    caps = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Cap"):
                name, value = line.split(":", 1)
                caps[name] = int(value, 16)
    return caps


def install_seccomp(program: bytes) -> None:
    """Add a seccomp filter (a BPF program compiled by libseccomp on the host)."""
    import ctypes

    if len(os.listdir("/proc/self/task")) != 1:
        raise SandboxSetupError("the worker has more than one thread before seccomp")

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = _libc()
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise SandboxSetupError(f"seccomp filter refused: {os.strerror(ctypes.get_errno())}")


# --------------------------------------------------------------------------------------
# The audit hook (messages only)
# --------------------------------------------------------------------------------------

FRIENDLY_EVENTS = {
    "os.fork": "creating processes",
    "os.forkpty": "creating processes",
    "os.posix_spawn": "creating processes",
    "os.spawn": "creating processes",
    "os.exec": "running programs",
    "os.system": "running shell commands",
    "subprocess.Popen": "running programs",
    "socket.__new__": "network access",
    "socket.getaddrinfo": "network access",
    "socket.gethostbyname": "network access",
}


def install_audit_hook() -> None:
    """Turn the operations the kernel refuses anyway into clear ``PermissionError``s."""

    def hook(event: str, args: tuple, _events=FRIENDLY_EVENTS) -> None:
        what = _events.get(event)
        if what is not None:
            raise PermissionError(f"Sandbox: {what} is not allowed.")

    sys.addaudithook(hook)


# --------------------------------------------------------------------------------------
# Running code
# --------------------------------------------------------------------------------------


def _on_cpu_signal(signum: int, frame: object) -> None:
    raise CPUTimeLimitExceeded(f"CPU time limit of {_CONFIG['limits']['cpu_s']:g} s exceeded")


def _on_wall_signal(signum: int, frame: object) -> None:
    raise WallTimeLimitExceeded(f"wall-time limit of {_CONFIG['limits']['wall_s']:g} s exceeded")


def _hint(exc: BaseException, limits: dict) -> str | None:
    try:
        return _hint_for(exc, limits)
    except BaseException:  # an exception object of the code's own making
        return None


def _hint_for(exc: BaseException, limits: dict) -> str | None:
    if isinstance(exc, MemoryError):
        return f"the sandbox allows {limits['memory_bytes'] // 2**20} MB of memory"
    if isinstance(exc, OSError) and exc.errno == 27:
        return f"files in the sandbox are limited to {limits['file_bytes'] // 2**20} MB"
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"the sandbox's folder holds at most {limits['disk_bytes'] // 2**20} MB"
    if isinstance(exc, OSError) and exc.errno == 30:
        return "only the current folder (/tmp) is writable"
    if isinstance(exc, PermissionError) and exc.errno == 1:
        return "the sandbox refuses this operation (no processes, sockets or system changes)"
    if (isinstance(exc, BlockingIOError) and exc.errno == 11) or (
            type(exc) is RuntimeError and "new thread" in str(exc)):
        return "the sandbox limits the number of threads"
    return None


def run_code(code: str, namespace: dict, call_index: int, config: dict) -> dict:
    """Run ``code`` in ``namespace``; return output, the last expression's value, error."""
    limits = config["limits"]
    out = CappedOutput(config["max_output_chars"])
    filename = "<python>" if call_index == 1 else f"<python-{call_index}>"
    value = error = error_type = None
    saved = sys.stdout, sys.stderr
    try:
        sys.stdout = sys.stderr = out
        signal.setitimer(signal.ITIMER_PROF, limits["cpu_s"])
        signal.setitimer(signal.ITIMER_REAL, limits["wall_s"])
        try:
            tree = ast.parse(code, filename, "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
            exec(compile(tree, filename, "exec"), namespace)
            if last is not None:
                result = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
                if result is not None:
                    value = repr(result)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error_type, error = "SystemExit", f"SystemExit: {exc.code}"
    except BaseException as exc:  # the code's own failure, reported to the model
        error_type = type(exc).__name__
        error = _format_error(exc, limits)
    finally:
        sys.stdout, sys.stderr = saved
    if value is not None and len(value) > config["max_output_chars"]:
        cut = len(value) - config["max_output_chars"]
        value = value[: config["max_output_chars"]] + f"... [{cut} more characters cut]"
    return {"output": out.getvalue(), "dropped": out.dropped, "value": value,
            "error": error, "error_type": error_type,
            "cpu_s": round(sum(os.times()[:2]), 3)}


def _format_error(exc: BaseException, limits: dict) -> str:
    """The traceback of the code's exception, without the worker's own frames (run_code
    above the code, the audit hook below it)."""
    try:
        report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        frames = [f for f in report.stack if f.filename != __file__]
        report.stack = traceback.StackSummary.from_list(frames)
        text = "".join(report.format()).rstrip()
    except BaseException:  # formatting must not fail the worker
        text = f"{type(exc).__name__}: {exc}"
    hint = _hint(exc, limits)
    if hint:
        text += f"\n(Hint: {hint}.)"
    limit = 4000
    if len(text) > limit:
        text = "... [start of traceback cut]\n" + text[-limit:]
    return text


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

_CONFIG: dict = {}


def setup(config: dict) -> dict:
    """Apply every restriction in ``config``; return what was applied (the hello)."""
    import base64

    applied: dict = {"pid": os.getpid()}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _on_cpu_signal)
    signal.signal(signal.SIGXCPU, _on_cpu_signal)
    signal.signal(signal.SIGALRM, _on_wall_signal)
    # Warm up what run_code needs, so nothing is first imported after the drop.
    _format_error(ValueError("warm-up"), config["limits"])
    libc = _libc()
    applied["rlimits"] = apply_limits(config["limits"])
    if config.get("uid") is not None:
        drop_privileges(int(config["uid"]))
    applied["uid"] = os.getuid()
    caps = capabilities()
    if caps.get("CapEff") or caps.get("CapPrm") or caps.get("CapAmb"):
        raise SandboxSetupError(f"capabilities left after setup: {caps}")
    _prctl(libc, PR_SET_NO_NEW_PRIVS, 1)
    applied["no_new_privs"] = True
    install_seccomp(base64.b64decode(config["seccomp_bpf"]))
    with open("/proc/self/status") as f:
        applied["seccomp_filters"] = next(
            (int(line.split()[1]) for line in f if line.startswith("Seccomp_filters:")), None)
    if config.get("audit_hooks", True):
        install_audit_hook()
    applied["audit_hooks"] = bool(config.get("audit_hooks", True))
    return applied


def main() -> int:
    config = json.loads(sys.argv[1])
    _CONFIG.update(config)
    req_fd, resp_fd = config["req_fd"], config["resp_fd"]
    try:
        hello = setup(config)
    except BaseException as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        write_message(resp_fd, {"setup_error": f"{type(exc).__name__}: {exc} (in {where.name}: "
                                               f"{where.line})"})
        return 1
    write_message(resp_fd, {"hello": hello})
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    calls = 0
    while True:
        request = read_message(req_fd)
        if request is None:
            return 0
        calls += 1
        try:
            reply = run_code(str(request.get("code", "")), namespace, calls, config)
        except BaseException as exc:  # e.g. the CPU signal landing between statements
            reply = {"output": "", "dropped": 0, "value": None,
                     "error_type": type(exc).__name__, "error": f"{type(exc).__name__}: {exc}",
                     "cpu_s": round(sum(os.times()[:2]), 3)}
        write_message(resp_fd, reply)


if __name__ == "__main__":
    sys.exit(main())
