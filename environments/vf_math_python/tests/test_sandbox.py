"""The sandbox against hostile programs, called directly (no environment in between).

Each hostile program must come back as an error the model can read, and leave the host as
it was: no stray processes, files or folders, no connection made. The fork bomb runs
without the audit hook only where a kernel limit on processes is in force (a pids cgroup or
RLIMIT_NPROC after a uid drop); it is skipped otherwise.
"""

from __future__ import annotations

import functools
import os
import select
import socket
import sys
import time
import uuid

import pytest

from vf_math_python.isolation import UID_BASE, detect_isolation
from vf_math_python.sandbox import (
    CodeError,
    LimitExceeded,
    ProcessDied,
    PythonSandbox,
    SandboxInfo,
    SandboxLimits,
    run_python,
)

FAST = SandboxLimits(timeout=2.0, max_processes=8)
ISOLATION = detect_isolation(sys.executable)


@functools.cache
def layers() -> SandboxInfo:
    """The layers a worker really gets here (a uid drop may be refused at run time)."""
    with PythonSandbox(FAST) as box:
        return box.describe()


@pytest.fixture
def kernel_process_limit() -> None:
    if not (layers().cgroup or layers().uid_dropped):
        pytest.skip("no pids cgroup and no uid drop here: no kernel-enforced process limit "
                    "to test without the audit hook")


@pytest.fixture
def uid_dropped() -> None:
    if not layers().uid_dropped:
        pytest.skip("the sandbox cannot drop root here (not root, or setuid/capset refused)")


def run_checked(code: str, limits: SandboxLimits = FAST, **options: object):
    """Run ``code`` in a fresh sandbox; check the host is clean afterwards."""
    with PythonSandbox(limits, **options) as box:
        result = box.run(code)
        folder = box.last_folder
    assert folder is not None and not os.path.exists(folder), "the throwaway folder is left"
    return result


@pytest.fixture(autouse=True)
def no_leftover_processes(sandbox_pids):
    yield
    if layers().uid_dropped:
        leftovers = []
        for _ in range(100):  # the kernel may need a moment to finish killing a group
            leftovers = sandbox_pids()
            if not leftovers:
                break
            time.sleep(0.02)
        assert not leftovers, f"sandbox processes survived: {leftovers}"


# -- ordinary use -----------------------------------------------------------------------


def test_prints_and_shows_last_value():
    result = run_checked("x = 6 * 7\nprint('x is', x)\nx + 1")
    assert result.ok
    assert result.tool_message() == "x is 42\n43"


def test_code_errors_come_back_as_tracebacks():
    result = run_checked("def f():\n    return 1 / 0\nf()")
    assert result.error_type == "ZeroDivisionError"
    assert 'File "<python>", line 2, in f' in result.error
    assert "sandbox_worker" not in result.error  # the worker's own frames are hidden
    with pytest.raises(CodeError, match="ZeroDivisionError: division by zero"):
        result.raise_for_error()


def test_syntax_errors_are_reported():
    result = run_checked("print(1")
    assert result.error_type == "SyntaxError"
    assert "SyntaxError" in result.error


def test_sympy_and_files_in_the_working_folder():
    code = ("import sympy\nopen('notes.txt', 'w').write('ok')\n"
            "print(open('notes.txt').read(), sympy.factorint(2**10 * 3))")
    result = run_checked(code, SandboxLimits(timeout=20))
    assert result.ok, result.error
    assert result.output.strip() == "ok {2: 10, 3: 1}"


def test_output_is_truncated():
    limits = SandboxLimits(timeout=5, max_output_chars=1000)
    result = run_checked("print('y' * 100_000)", limits)
    assert result.ok
    assert result.output == "y" * 1000
    assert result.dropped_chars == 100_001 - 1000
    assert "99001 more characters of output cut (the limit is 1000" in result.tool_message(1000)


def test_no_output_hint():
    assert run_checked("x = 1").tool_message() == \
        "(no output: print() the values you want to see)"


# -- hostile programs ---------------------------------------------------------------------


def test_infinite_loop_is_stopped():
    result = run_checked("while True: pass")
    assert result.hit_limit
    assert result.error_type in ("CPUTimeLimitExceeded", "WallTimeLimitExceeded")
    assert "limit of" in result.error and "exceeded" in result.error
    with pytest.raises(LimitExceeded):
        result.raise_for_error()


def test_code_that_ignores_the_timers_is_killed():
    code = ("import signal\n"
            "for s in (signal.SIGPROF, signal.SIGALRM, signal.SIGXCPU):\n"
            "    signal.signal(s, signal.SIG_IGN)\n"
            "while True: pass")
    result = run_checked(code)
    assert result.killed and result.hit_limit
    assert result.error_type in ("WallTimeLimit", "Killed")
    assert result.error == "The code did not stop within the wall-time limit of 2 s and was killed."
    with pytest.raises(LimitExceeded, match="^The code did not stop"):
        result.raise_for_error()


def test_a_process_that_exits_without_answering():
    result = run_checked("import os\nprint('bye', flush=True)\nos._exit(3)")
    assert result.killed and not result.hit_limit
    assert result.error_type == "ProcessDied"
    assert result.error == "The Python process exited with status 3 before answering."
    with pytest.raises(ProcessDied):
        result.raise_for_error()


def test_allocating_10_gb_fails_with_memory_error():
    result = run_checked("x = bytearray(10**10)")
    assert result.error_type == "MemoryError"
    assert "(Hint: the sandbox allows 512 MB of memory.)" in result.error


def test_fork_bomb_is_refused():
    result = run_checked("import os\nwhile True: os.fork()")
    assert result.error_type == "PermissionError"
    assert "PermissionError: Sandbox: creating processes is not allowed." in result.error


@pytest.mark.usefixtures("kernel_process_limit")
def test_fork_bomb_without_audit_hook_hits_the_kernel_limit():
    result = run_checked("import os\nwhile True: os.fork()", audit_hooks=False)
    assert result.error_type == "BlockingIOError"
    assert "Resource temporarily unavailable" in result.error
    assert "limits the number of processes" in result.error


@pytest.mark.usefixtures("kernel_process_limit")
def test_process_limit_counts_children():
    code = ("import os, time\nn = 0\ntry:\n    for _ in range(40):\n"
            "        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n"
            "        n += 1\nfinally:\n    print('forked', n)")
    result = run_checked(code, audit_hooks=False)
    forked = int(result.output.split()[-1])
    assert forked < FAST.max_processes
    assert result.error_type == "BlockingIOError"


def test_huge_file_write_is_refused():
    result = run_checked("open('big', 'wb').write(b'0' * 10**10)")
    assert result.error_type == "MemoryError"  # the 10 GB bytes object cannot even be built


def test_file_growing_past_the_size_limit_fails():
    code = "f = open('big', 'wb')\nchunk = b'0' * 2**20\nwhile True:\n    f.write(chunk)"
    result = run_checked(code, SandboxLimits(timeout=5, max_file_mb=4))
    assert result.error_type == "OSError"
    assert "[Errno 27] File too large" in result.error
    assert "files in the sandbox are limited to 4 MB" in result.error


def test_many_files_are_refused():
    code = "for i in range(100):\n    open(f'f{i}', 'w').close()"
    result = run_checked(code, SandboxLimits(timeout=5, max_written_files=10))
    assert "opening more than 10 files for writing is not allowed" in result.error


def test_reading_outside_the_folder_is_refused():
    result = run_checked("print(open('/etc/passwd').read())")
    assert ("PermissionError: Sandbox: reading '/etc/passwd' (outside the working directory) "
            "is not allowed.") in result.error
    assert "root:" not in result.output


def test_listing_outside_the_folder_is_refused():
    result = run_checked("import os\nos.listdir('/etc')")
    assert "Sandbox: reading '/etc'" in result.error


@pytest.mark.parametrize("target", ["../escape-{tag}.txt", "/tmp/escape-{tag}.txt"])
def test_writing_outside_the_folder_is_refused(target: str):
    tag = uuid.uuid4().hex
    path = target.format(tag=tag)
    result = run_checked(f"open({path!r}, 'w').write('x')")
    assert f"PermissionError: Sandbox: writing {path!r} (outside the working directory)" \
        in result.error
    assert not os.path.exists(f"/tmp/escape-{tag}.txt")


def test_symlink_escape_is_refused():
    result = run_checked("import os\nos.symlink('/etc/passwd', 'p')\nprint(open('p').read())")
    assert "Sandbox: creating links is not allowed." in result.error


@pytest.mark.usefixtures("uid_dropped")
def test_parent_folder_is_not_writable_even_without_the_hook():
    tag = uuid.uuid4().hex
    result = run_checked(f"open('../escape-{tag}.txt', 'w').write('x')", audit_hooks=False)
    assert "[Errno 13] Permission denied" in result.error


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def received_connection(server: socket.socket) -> bool:
    ready, _, _ = select.select([server], [], [], 0.3)
    return bool(ready)


def test_socket_connection_is_refused(listener: socket.socket):
    port = listener.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'x')"
    result = run_checked(code)
    assert "PermissionError: Sandbox: network access is not allowed." in result.error
    assert not received_connection(listener)


@pytest.mark.skipif(not ISOLATION.namespaces, reason="no network namespace (unshare) here")
def test_network_namespace_blocks_sockets_without_the_hook(listener: socket.socket):
    port = listener.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'x')"
    result = run_checked(code, audit_hooks=False)
    assert "Network is unreachable" in result.error or "Connection refused" in result.error
    assert not received_connection(listener)


@pytest.mark.skipif(not ISOLATION.namespaces, reason="no PID namespace (unshare) here")
def test_pid_namespace_hides_host_processes():
    result = run_checked("import os\nos.getpid(), len([p for p in os.listdir('/proc') "
                         "if p.isdigit()])", audit_hooks=False)
    assert result.ok, result.error
    assert result.value is not None
    pid, _ = eval(result.value)
    assert pid == 1  # the sandboxed interpreter is the namespace's init process


def test_other_processes_cannot_be_signalled():
    result = run_checked(f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)")
    assert "Sandbox: signalling other processes is not allowed." in result.error


def test_subprocess_is_refused():
    result = run_checked("import subprocess\nsubprocess.run(['id'])")
    assert "Sandbox: running programs is not allowed." in result.error


def test_rlimits_cannot_be_raised():
    result = run_checked("import resource\n"
                         "resource.setrlimit(resource.RLIMIT_AS, (-1, -1))")
    assert "Sandbox: changing resource limits is not allowed." in result.error


def test_ctypes_calls_are_refused():
    result = run_checked("import ctypes\nctypes.CDLL(None).fork()")
    assert "Sandbox: calling C functions through ctypes is not allowed." in result.error


def test_reported_layers():
    with PythonSandbox(FAST) as box:
        info = box.describe()
    assert info.audit_hooks
    assert {"RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE"} <= set(info.rlimits)
    assert info.namespaces == ISOLATION.namespaces
    assert info.cgroup == (ISOLATION.cgroup_base is not None)
    if info.uid_dropped:
        assert info.uid is not None and info.uid >= UID_BASE
    elif ISOLATION.can_drop_uid:  # root, but the platform refused the drop: it says why
        assert any("uid drop failed" in note for note in info.notes)


# -- persistent interpreters ---------------------------------------------------------------


def test_persistent_sandbox_keeps_state_and_survives_cpu_limit():
    with PythonSandbox(FAST, persistent=True) as box:
        assert box.run("x = 41").ok
        stopped = box.run("while True: pass")
        assert stopped.hit_limit and not stopped.killed
        after = box.run("x + 1")
        assert after.value == "42" and not after.restarted


def test_persistent_sandbox_restarts_after_a_kill():
    with PythonSandbox(FAST, persistent=True) as box:
        assert box.run("x = 41").ok
        killed = box.run("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                         "signal.signal(signal.SIGPROF, signal.SIG_IGN)\nwhile True: pass")
        assert killed.killed and killed.restarted
        assert "The Python session was restarted" in killed.error_message()
        after = box.run("x")
        assert after.error_type == "NameError"
        assert box.run("x = 1\nx").value == "1"


def test_one_shot_sandbox_forgets_state():
    with PythonSandbox(FAST) as box:
        assert box.run("x = 41").ok
        assert box.run("x").error_type == "NameError"


def test_run_python_helper():
    assert run_python("2 ** 10").value == "1024"


def test_limits_are_validated():
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        SandboxLimits(timeout=0)
    with pytest.raises(ValueError, match="max_processes must be at least 4"):
        SandboxLimits(max_processes=2)
