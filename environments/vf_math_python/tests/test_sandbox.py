"""The sandbox in ordinary use and at its limits, called directly (no environment in
between). The hostile-program suite (the kernel layers under attack) is test_hostile.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vf_math_python.errors import SandboxSetupError
from vf_math_python.isolation import UID_BASE, detect_isolation
from vf_math_python.sandbox import (
    CodeError,
    LimitExceeded,
    ProcessDied,
    PythonSandbox,
    SandboxLimits,
    run_python,
)

FAST = SandboxLimits(timeout=2.0, max_processes=8)
ISOLATION = detect_isolation(sys.executable)
#: Tests run with a cgroup where the machine has one, else in the explicit weaker mode.
MODE = "cgroup" if ISOLATION.cgroup is not None else "rlimit"
#: Throwaway uids the sandboxes of these tests ran as (checked for leftovers).
USED_UIDS: list[int] = []
pytestmark = pytest.mark.filterwarnings("ignore:python sandbox. resource_limits='rlimit'")


def run_checked(code: str, limits: SandboxLimits = FAST, **options: object):
    """Run ``code`` in a fresh sandbox; check nothing of it is left afterwards."""
    options.setdefault("resource_limits", MODE)
    with PythonSandbox(limits, **options) as box:
        result = box.run(code)
    if box.last_cgroup is not None:
        assert not box.last_cgroup.exists, "the cgroup is left"
    if box.last_info is not None and box.last_info.uid_dropped:
        USED_UIDS.append(box.last_info.uid)
    assert box.last_pid is not None
    try:
        with open(f"/proc/{box.last_pid}/status") as f:
            assert "State:\tZ" in f.read(), "the sandbox process is left"
    except FileNotFoundError:
        pass
    return result


@pytest.fixture(autouse=True)
def no_leftover_processes(sandbox_pids):
    yield
    assert not sandbox_pids(USED_UIDS), "sandbox processes survived"


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


def test_file_growing_past_the_size_limit_fails():
    code = "f = open('big', 'wb')\nchunk = b'0' * 2**20\nwhile True:\n    f.write(chunk)"
    result = run_checked(code, SandboxLimits(timeout=5, max_file_mb=4))
    assert result.error_type == "OSError"
    assert "[Errno 27] File too large" in result.error
    assert "files in the sandbox are limited to 4 MB" in result.error


def test_filling_the_folder_fails_with_no_space():
    code = "for i in range(100):\n    open(f'f{i}', 'wb').write(b'0' * 2**20)"
    result = run_checked(code, SandboxLimits(timeout=5, disk_mb=8))
    assert "[Errno 28] No space left on device" in result.error
    assert "the sandbox's folder holds at most 8 MB" in result.error


@pytest.mark.skipif(MODE != "cgroup", reason="needs a memory cgroup")
def test_files_in_tmpfs_count_against_the_memory_cgroup():
    """RLIMIT_AS does not see tmpfs pages; the memory cgroup does, and kills at the limit."""
    code = "for i in range(400):\n    open(f'f{i}', 'wb').write(b'0' * 2**20)"
    result = run_checked(code, SandboxLimits(timeout=10, memory_mb=128, disk_mb=1024,
                                             max_file_mb=2))
    assert result.killed and result.hit_limit
    assert "went over the memory limit of 128 MB" in result.error


@pytest.mark.parametrize("audit_hooks", [True, False])
def test_ordinary_file_work_in_the_folder(audit_hooks: bool):
    code = (
        "import os, shutil, tempfile\n"
        "os.makedirs('a/b/c', exist_ok=True)\n"
        "open('a/b/c/f.txt', 'w').write('hi')\n"
        "os.rename('a/b/c/f.txt', 'a/g.txt')\n"
        "os.chmod('a/g.txt', 0o600)\n"
        "fd, name = tempfile.mkstemp(dir='a')\nos.write(fd, b'x')\nos.close(fd)\n"
        "with tempfile.TemporaryDirectory() as d:\n    open(os.path.join(d, 'x'), 'w').close()\n"
        "with tempfile.NamedTemporaryFile() as t:\n    t.write(b'y')\n"
        "os.remove(name)\n"
        "shutil.copy('a/g.txt', 'h.txt')\n"
        "shutil.rmtree('a/b')\n"
        "os.listdir('a'), open('h.txt').read(), oct(os.stat('h.txt').st_mode & 0o777), os.getcwd()"
    )
    result = run_checked(code, audit_hooks=audit_hooks)
    assert result.ok, result.error
    assert result.value == "(['g.txt'], 'hi', '0o600', '/tmp')"


def test_non_ascii_output_is_cut_like_any_other():
    limits = SandboxLimits(timeout=5, max_output_chars=1000)
    result = run_checked("print('\U0001F600' * 5000)\n'\U0001F600' * 5000", limits)
    assert result.ok, result.error
    assert result.output == "\U0001F600" * 1000
    assert result.dropped_chars == 4001
    assert result.value is not None and result.value.startswith("'" + "\U0001F600" * 999)
    assert result.value.endswith("more characters cut]")


def test_control_characters_at_the_output_limit():
    """JSON escapes a control character as 6 bytes: the reply must still fit."""
    limits = SandboxLimits(timeout=5, max_output_chars=8000)
    result = run_checked("print('\\x01' * 20000)\n'\\x01' * 20000", limits)
    assert result.ok, result.error
    assert result.output == "\x01" * 8000


def test_lone_surrogates_are_replaced():
    result = run_checked("print('a\\ud800b', '\\udfff')\nraise ValueError('\\udc80')")
    assert result.output == "a\ufffdb \ufffd\n"
    assert "ValueError: \ufffd" in result.error
    result.error_message().encode("utf-8")  # what goes to the model is valid UTF-8
    assert run_checked("'\\ud800'").value == "'\\ud800'"  # repr escapes it anyway


def test_processes_and_sockets_are_refused_by_the_kernel_without_the_hook():
    result = run_checked("import os\nos.fork()", audit_hooks=False)
    assert "PermissionError: [Errno 1] Operation not permitted" in result.error
    assert "the sandbox refuses this operation" in result.error
    result = run_checked("import socket\nsocket.socket()", audit_hooks=False)
    assert "PermissionError: [Errno 1] Operation not permitted" in result.error


def test_the_hook_words_refusals_clearly():
    result = run_checked("import subprocess\nsubprocess.run(['id'])")
    assert "PermissionError: Sandbox: running programs is not allowed." in result.error


def test_threads_work_up_to_the_limit():
    code = ("import threading\nout = []\n"
            "ts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
            "[t.start() for t in ts]\n[t.join() for t in ts]\nsorted(out)")
    assert run_checked(code).value == "[0, 1, 2, 3]"
    bomb = ("import threading, time\n"
            "for _ in range(100):\n    threading.Thread(target=time.sleep, args=(5,), "
            "daemon=True).start()")
    result = run_checked(bomb, SandboxLimits(timeout=10, max_processes=8))
    assert result.error_type == "RuntimeError"
    assert "can't start new thread" in result.error
    assert "the sandbox limits the number of threads" in result.error


def test_reported_layers():
    with PythonSandbox(FAST, resource_limits=MODE) as box:
        info = box.describe()
    assert info.engine.startswith("bubblewrap ")
    assert {"mount", "pid", "net", "ipc", "uts"} <= set(info.namespaces)
    assert info.seccomp_filters is not None and info.seccomp_filters >= 2
    assert info.no_new_privs and info.audit_hooks
    assert {"RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC"} <= set(info.rlimits)
    if ISOLATION.is_root:
        assert info.uid_dropped and info.uid is not None and info.uid >= UID_BASE
    else:
        assert "user" in info.namespaces and not info.uid_dropped
    if MODE == "cgroup":
        assert "memory cgroup" in info.memory_limit and "pids cgroup" in info.process_limit


def test_missing_bubblewrap_is_refused_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    detect_isolation.cache_clear()
    try:
        with pytest.raises(SandboxSetupError) as caught:
            PythonSandbox(FAST, resource_limits=MODE)
    finally:
        detect_isolation.cache_clear()
    message = str(caught.value)
    assert message.startswith("The python sandbox cannot run here; it refuses to run with "
                              "fewer layers.")
    assert "- bubblewrap: no `bwrap` program on PATH; install bubblewrap" in message
    assert "apt-get install bubblewrap" in message


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="resource_limits must be one of"):
        PythonSandbox(FAST, resource_limits="none")
    with pytest.raises(TypeError, match=r"PythonSandbox\(namespaces=...\) is gone"):
        PythonSandbox(FAST, namespaces=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        PythonSandbox(FAST, colour=1)


def test_persistent_sandbox_keeps_state_and_survives_cpu_limit():
    with PythonSandbox(FAST, persistent=True, resource_limits=MODE) as box:
        assert box.run("x = 41").ok
        stopped = box.run("while True: pass")
        assert stopped.hit_limit and not stopped.killed
        after = box.run("x + 1")
        assert after.value == "42" and not after.restarted


def test_persistent_sandbox_restarts_after_a_kill():
    with PythonSandbox(FAST, persistent=True, resource_limits=MODE) as box:
        assert box.run("x = 41").ok
        killed = box.run("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                         "signal.signal(signal.SIGPROF, signal.SIG_IGN)\nwhile True: pass")
        assert killed.killed and killed.restarted
        assert "The Python session was restarted" in killed.error_message()
        after = box.run("x")
        assert after.error_type == "NameError"
        assert box.run("x = 1\nx").value == "1"


def test_one_shot_sandbox_forgets_state():
    with PythonSandbox(FAST, resource_limits=MODE) as box:
        assert box.run("x = 41").ok
        assert box.run("x").error_type == "NameError"


def test_run_python_helper():
    assert run_python("2 ** 10", resource_limits=MODE).value == "1024"


def test_limits_are_validated():
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        SandboxLimits(timeout=0)
    with pytest.raises(ValueError, match="max_processes must be at least 4"):
        SandboxLimits(max_processes=2)


def test_the_environment_refuses_at_load_time(monkeypatch, tmp_path):
    from vf_math_python import load_environment

    with pytest.raises(ValueError, match="resource_limits must be one of"):
        load_environment(num_train_examples=2, num_eval_examples=2,
                         sandbox_options={"resource_limits": "none"})
    monkeypatch.setenv("PATH", str(tmp_path))
    detect_isolation.cache_clear()
    try:
        with pytest.raises(SandboxSetupError, match="bubblewrap: no `bwrap` program on PATH"):
            load_environment(num_train_examples=2, num_eval_examples=2,
                             sandbox_options={"resource_limits": MODE})
        env = load_environment(num_train_examples=2, num_eval_examples=2, use_tools=False)
        assert env is not None  # no tool, no sandbox needed
    finally:
        detect_isolation.cache_clear()


def test_an_interpreter_under_the_hosts_tmp(tmp_path):
    """A venv under the host's /tmp (CI clones, pytest's tmp_path) is bound read-only on top
    of the sandbox's private /tmp instead of being hidden by it."""
    import site
    import subprocess
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert str(venv).startswith("/tmp/")
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    here = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if p]
    (Path(purelib) / "host_packages.pth").write_text("\n".join(here) + "\n")
    result = run_checked("import sys; print(sys.prefix)", python_executable=str(python))
    assert result.output.strip().endswith(str(venv)), result
    result = run_checked("open('/tmp/x', 'w').write('1'); print(open('/tmp/x').read())",
                         python_executable=str(python))
    assert "1" in result.output, result
