"""The sandboxed Python worker: runs inside the child process, standard library only.

The host (:mod:`vf_math_python.sandbox`) starts this file as a script with
``python -I -B sandbox_worker.py '<json config>'``, possibly under ``unshare`` (new network,
PID and IPC namespaces). Before any model-written code runs, the worker, in this order:

1. joins its own pids cgroup (when the host made one): a kernel cap on processes and
   threads that holds for root too;
2. sets ``PR_SET_NO_NEW_PRIVS`` (set-user-ID programs cannot raise privileges);
3. sets resource limits: address space (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``), file
   size (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so writes fail with ``EFBIG``), open
   files, core dumps off, processes (``RLIMIT_NPROC``; the kernel ignores it for root);
4. drops root to a throwaway unprivileged uid when asked (keeping only
   ``CAP_DAC_READ_SEARCH`` when the interpreter lives in a folder other users cannot read);
5. installs an audit hook (PEP 578) that refuses process creation, signals to other
   processes, sockets, ``ctypes`` foreign calls, rlimit changes, and file access outside
   the working directory (reads are also allowed in the interpreter's library folders).

Then it answers requests on a pipe: each is a piece of code, run in one namespace (which
persists across requests: the host decides whether a worker serves one call or a whole
rollout). CPU time per request is bounded by ``ITIMER_PROF`` and wall time by ``ITIMER_REAL``; their
signals raise :class:`CPUTimeLimitExceeded` / :class:`WallTimeLimitExceeded` inside the
running code (so the output so far and the line it was on come back). The host kills the
process if it still has not answered a moment later.

Wire format, both directions: 8 ASCII hex digits (the byte length) then a UTF-8 JSON object.
Audit hooks are not a security boundary against a determined attacker (PEP 578 says so);
the kernel-enforced layers are the namespaces, cgroup, rlimits and the uid drop.
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

CAP_DAC_READ_SEARCH = 2
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
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


def write_message(fd: int, message: dict) -> None:
    body = json.dumps(message).encode("utf-8")
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


def _keep_only_read_search_capability(libc) -> None:  # type: ignore[no-untyped-def]
    """After setuid with KEEPCAPS: keep CAP_DAC_READ_SEARCH (read any file, search any
    folder) and nothing else, so an interpreter under /root can still import modules."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    bit = 1 << CAP_DAC_READ_SEARCH
    data = (Data * 2)(Data(bit, bit, 0), Data(0, 0, 0))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise SandboxSetupError(f"capset failed: {os.strerror(ctypes.get_errno())}")


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


def drop_privileges(uid: int, keep_read_cap: bool) -> None:
    """Become ``uid`` (group ``uid``, no supplementary groups), irreversibly."""
    libc = _libc()
    if keep_read_cap:
        _prctl(libc, PR_SET_KEEPCAPS, 1)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if keep_read_cap:
        _keep_only_read_search_capability(libc)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid:
        raise SandboxSetupError(f"setuid({uid}) did not take effect")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise SandboxSetupError("could regain root after dropping privileges")
    # A credential change clears the parent-death signal; restore it so that the worker
    # dies with its `unshare --kill-child` parent.
    _prctl(libc, PR_SET_PDEATHSIG, signal.SIGKILL)


# --------------------------------------------------------------------------------------
# The audit hook
# --------------------------------------------------------------------------------------

DENIED_EVENTS = {
    "os.fork": "creating processes",
    "os.forkpty": "creating processes",
    "os.posix_spawn": "creating processes",
    "os.spawn": "creating processes",
    "os.exec": "running programs",
    "os.system": "running shell commands",
    "subprocess.Popen": "running programs",
    "signal.pthread_kill": "signalling threads",
    "socket.__new__": "network access",
    "socket.connect": "network access",
    "socket.bind": "network access",
    "socket.sendto": "network access",
    "socket.sendmsg": "network access",
    "socket.getaddrinfo": "network access",
    "socket.gethostbyname": "network access",
    "socket.gethostbyaddr": "network access",
    "socket.getnameinfo": "network access",
    "resource.setrlimit": "changing resource limits",
    "resource.prlimit": "changing resource limits",
    "ctypes.dlsym": "calling C functions through ctypes",
    "ctypes.dlsym/handle": "calling C functions through ctypes",
    "ctypes.cdata": "reading raw memory through ctypes",
    "ctypes.call_function": "calling C functions through ctypes",
    "gc.get_objects": "inspecting the interpreter's objects",
    "gc.get_referrers": "inspecting the interpreter's objects",
    "gc.get_referents": "inspecting the interpreter's objects",
    "os.symlink": "creating links",
    "os.link": "creating links",
}

# event -> indices of (path argument, is it written?) ; "dir_fd" argument indices.
_PATH_EVENTS = {
    "os.listdir": ((0, False),),
    "os.scandir": ((0, False),),
    "os.chdir": ((0, False),),
    "os.mkdir": ((0, True),),
    "os.rmdir": ((0, True),),
    "os.remove": ((0, True),),
    "os.rename": ((0, True), (1, True)),
    "os.chmod": ((0, True),),
    "os.chown": ((0, True),),
    "os.truncate": ((0, True),),
    "os.utime": ((0, True),),
    "os.setxattr": ((0, True),),
    "os.removexattr": ((0, True),),
    "os.listxattr": ((0, False),),
    "os.getxattr": ((0, False),),
    "shutil.rmtree": ((0, True),),
    "shutil.copyfile": ((0, False), (1, True)),
    "shutil.copymode": ((0, False), (1, True)),
    "shutil.copystat": ((0, False), (1, True)),
    "shutil.copytree": ((0, False), (1, True)),
    "shutil.move": ((0, True), (1, True)),
    "shutil.chown": ((0, True),),
    "shutil.unpack_archive": ((0, False), (1, True)),
    "tempfile.mkstemp": ((0, True),),
    "tempfile.mkdtemp": ((0, True),),
}
_DIR_FD_INDEX = {"os.mkdir": 2, "os.rmdir": 1, "os.remove": 1, "os.rename": (2, 3),
                 "os.chmod": 2, "os.chown": 3, "os.utime": 3, "shutil.rmtree": 1}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def library_roots() -> list[str]:
    """Folders the interpreter reads modules from (read-only access for the code)."""
    import sysconfig

    roots = set()
    candidates = list(sys.path)
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            candidates.append(sysconfig.get_path(key))
        except KeyError:
            pass
    for path in candidates:
        if path and os.path.isabs(path) and os.path.exists(path):
            roots.add(os.path.realpath(path))
    return sorted(roots)


def install_audit_hook(workdir: str, read_roots: list[str], read_files: list[str],
                       max_written_files: int) -> None:
    """Refuse the operations in DENIED_EVENTS and file access outside the allowed folders.

    Everything the hook needs is bound as default arguments or immutable tuples, and it
    never calls back into objects the code controls (paths arrive as str/bytes/int).
    """
    workdir = os.path.realpath(workdir)
    write_roots = (workdir,)
    read_roots_t = (workdir, *read_roots)
    read_files_t = tuple(os.path.realpath(f) for f in read_files)
    written = [0]
    my_pid = os.getpid()

    def inside(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def deny(what: str) -> None:
        raise PermissionError(f"Sandbox: {what} is not allowed.")

    def check(path: object, write: bool, directory_fd_ok: bool = False) -> None:
        if path is None:
            path = "."
        if isinstance(path, int):
            return  # an already-open file descriptor
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            deny(f"a path of type {type(path).__name__}")
        real = os.path.realpath(path)
        if write:
            if not inside(real, write_roots) and real not in ("/dev/null",):
                deny(f"writing {path!r} (outside the working directory)")
        elif not (inside(real, read_roots_t) or real in read_files_t):
            deny(f"reading {path!r} (outside the working directory)")

    def hook(event: str, args: tuple, _denied=DENIED_EVENTS, _paths=_PATH_EVENTS,
             _dirfd=_DIR_FD_INDEX, _wflags=_WRITE_FLAGS) -> None:
        if event in _denied:
            deny(_denied[event])
        if event == "open":
            path, mode, flags = args
            if isinstance(mode, str):
                write = any(c in mode for c in "wax+")
            else:
                write = bool((flags or 0) & _wflags)
            check(path, write)
            if mode is None and isinstance(path, str | bytes):
                real = os.path.realpath(path)
                if os.path.isdir(real) and not inside(real, write_roots):
                    deny(f"opening the folder {path!r} (outside the working directory)")
            if write and not isinstance(path, int):
                written[0] += 1
                if written[0] > max_written_files:
                    deny(f"opening more than {max_written_files} files for writing")
        elif event in ("os.kill", "os.killpg"):
            if args[0] not in (0, my_pid):
                deny("signalling other processes")
        elif event == "sqlite3.connect":
            database = args[0]
            if isinstance(database, str | bytes) and database not in (":memory:", b":memory:", ""):
                check(database, True)
        elif event in _paths:
            index = _dirfd.get(event)
            indices = index if isinstance(index, tuple) else (index,)
            for i in indices:
                if i is not None and i < len(args) and args[i] is not None:
                    deny("paths relative to a directory descriptor (dir_fd)")
            for position, write in _paths[event]:
                if position < len(args):
                    check(args[position], write)

    sys.addaudithook(hook)


# --------------------------------------------------------------------------------------
# Running code
# --------------------------------------------------------------------------------------


def _on_cpu_signal(signum: int, frame: object) -> None:
    raise CPUTimeLimitExceeded(f"CPU time limit of {_CONFIG['limits']['cpu_s']:g} s exceeded")


def _on_wall_signal(signum: int, frame: object) -> None:
    raise WallTimeLimitExceeded(f"wall-time limit of {_CONFIG['limits']['wall_s']:g} s exceeded")


def _hint(exc: BaseException, limits: dict) -> str | None:
    if isinstance(exc, MemoryError):
        return f"the sandbox allows {limits['memory_bytes'] // 2**20} MB of memory"
    if isinstance(exc, OSError) and exc.errno == 27:
        return f"files in the sandbox are limited to {limits['file_bytes'] // 2**20} MB"
    if isinstance(exc, BlockingIOError) and exc.errno == 11:
        return "the sandbox limits the number of processes and threads"
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
    applied: dict = {"pid": os.getpid(), "cgroup": False, "no_new_privs": False}
    if config.get("cgroup_procs"):
        with open(config["cgroup_procs"], "w") as f:
            f.write("0")
        applied["cgroup"] = True
    try:
        _prctl(_libc(), PR_SET_NO_NEW_PRIVS, 1)
        applied["no_new_privs"] = True
    except (OSError, AttributeError, SandboxSetupError):
        pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _on_cpu_signal)
    signal.signal(signal.SIGXCPU, _on_cpu_signal)
    signal.signal(signal.SIGALRM, _on_wall_signal)
    # Warm up what run_code needs, so nothing is first imported after the drop.
    _format_error(ValueError("warm-up"), config["limits"])
    read_roots = library_roots()
    applied["rlimits"] = apply_limits(config["limits"])
    if config.get("uid") is not None:
        drop_privileges(int(config["uid"]), bool(config.get("keep_read_cap")))
        os.listdir(os.path.dirname(os.__file__))  # can we still read the standard library?
    applied["uid"] = os.getuid()
    if config.get("audit_hooks", True):
        install_audit_hook(os.getcwd(), read_roots, ["/dev/null", "/dev/urandom", "/dev/zero"],
                           config["max_written_files"])
    applied["audit_hooks"] = bool(config.get("audit_hooks", True))
    return applied


def main() -> int:
    config = json.loads(sys.argv[1])
    _CONFIG.update(config)
    req_fd, resp_fd = config["req_fd"], config["resp_fd"]
    try:
        hello = setup(config)
    except BaseException as exc:
        write_message(resp_fd, {"setup_error": f"{type(exc).__name__}: {exc}"})
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
