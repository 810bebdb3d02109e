"""Hostile programs for the sandbox, and the host checks that follow them.

Each program attacks the host the way model-written code could. Placeholders (``@TAG@``,
``@HOME@``, ``@SECRET@``, ``@SOCK@``, ``@PORT@``, ``@HOST_PID@``, ``@MARKER_PID@``) are
replaced by :func:`render`. A program prints ``ESCAPED`` if its attack got through; with
``must_raise`` it must also end in an error. What it could have left on the host is checked
afterwards by the test (files named with the tag, processes, cgroups, the listeners).
Used by ``test_hostile.py`` directly (as root) and through ``hostile_driver.py`` (as an
unprivileged user).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hostile:
    name: str
    code: str
    #: The program must end in an error (else: it may succeed inside the sandbox, e.g. by
    #: writing its own /tmp, and the host check decides).
    must_raise: bool = True


_LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def _syscall(number: int, *args: str) -> str:
    """A raw syscall through ctypes that prints ESCAPED unless it fails."""
    joined = ", ".join(args)
    return (_LIBC + f"r = libc.syscall({number}{', ' if args else ''}{joined})\n"
            "if r >= 0:\n    print('ESCAPED', r)\n"
            "raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))")


PROGRAMS: tuple[Hostile, ...] = (
    # -- reading the host's files ---------------------------------------------------
    Hostile("read /etc/shadow", "print('ESCAPED', open('/etc/shadow').read()[:20])"),
    Hostile("read a file in the host user's home", "print('ESCAPED', open(@SECRET@).read())"),
    Hostile("list the host user's home", "import os\nnames = os.listdir(@HOME@)\n"
            "if os.path.basename(@SECRET@) in names:\n    print('ESCAPED', names)\n"
            "raise LookupError(f'the secret is not there: {names}')"),
    Hostile("read /etc/passwd", "print('ESCAPED', open('/etc/passwd').read()[:20])"),
    Hostile("read through /proc/1/root", "print('ESCAPED', open('/proc/1/root' + @SECRET@).read())"),
    Hostile("read a host process's environment",
            "print('ESCAPED', open('/proc/@HOST_PID@/environ', 'rb').read()[:20])"),
    Hostile("openat relative to /", "import os\nfd = os.open('/', os.O_RDONLY)\n"
            "print('ESCAPED', os.read(os.open('etc/shadow', os.O_RDONLY, dir_fd=fd), 20))"),
    Hostile("symlink to the secret", "import os\nos.symlink(@SECRET@, 'link')\n"
            "print('ESCAPED', open('link').read())"),
    Hostile("hard link to the secret", "import os\nos.link(@SECRET@, 'hard')\nprint('ESCAPED')"),
    Hostile("read the host's cgroup files",
            "print('ESCAPED', open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read())"),
    Hostile("open a raw disk", "print('ESCAPED', open('/dev/sda', 'rb').read(16))"),
    # -- writing outside the sandbox ------------------------------------------------
    Hostile("write /tmp", "open('/tmp/escape-@TAG@', 'w').write('x' * 1000)", must_raise=False),
    Hostile("write /dev/shm", "open('/dev/shm/escape-@TAG@', 'w').write('x' * 1000)",
            must_raise=False),
    Hostile("write /var/tmp", "open('/var/tmp/escape-@TAG@', 'w').write('x' * 1000)",
            must_raise=False),
    Hostile("write the host user's home", "open(@HOME@ + '/escape-@TAG@', 'w').write('x')"),
    Hostile("write the parent folder", "open('../escape-@TAG@', 'w').write('x')"),
    Hostile("write the root folder", "open('/escape-@TAG@', 'w').write('x')"),
    Hostile("write into the interpreter's site-packages",
            "import sysconfig\nopen(sysconfig.get_path('purelib') + '/escape_@TAG@.py', 'w')"
            ".write('print(1)')"),
    Hostile("write the kernel's core_pattern",
            "open('/proc/sys/kernel/core_pattern', 'w').write('|/tmp/escape-@TAG@')"),
    Hostile("write /proc/sysrq-trigger", "open('/proc/sysrq-trigger', 'w').write('h')"),
    Hostile("chmod the interpreter",
            "import os, sys\nos.chmod(os.path.realpath(sys.executable), 0o777)"),
    Hostile("create a device node", "import os, stat\n"
            "os.mknod('/tmp/mem', stat.S_IFCHR | 0o666, os.makedev(1, 1))\n"
            "print('ESCAPED', open('/tmp/mem', 'rb').read(16))"),
    Hostile("raise our own memory limit",
            "open('/sys/fs/cgroup/memory/memory.limit_in_bytes', 'w').write('-1')"),
    # -- network ----------------------------------------------------------------------
    Hostile("connect to the host's unix socket", "import socket\n"
            "s = socket.socket(socket.AF_UNIX)\ns.connect(@SOCK@)\ns.sendall(b'@TAG@')\n"
            "print('ESCAPED')"),
    Hostile("connect to the host's unix socket without the socket module's audit event",
            "import _socket\ns = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)\n"
            "s.connect(@SOCK@)\ns.sendall(b'@TAG@')\nprint('ESCAPED')"),
    Hostile("connect to a TCP port on the host", "import socket\n"
            "socket.create_connection(('127.0.0.1', @PORT@), timeout=1).sendall(b'@TAG@')\n"
            "print('ESCAPED')"),
    Hostile("send UDP", "import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)\n"
            "s.sendto(b'@TAG@', ('127.0.0.1', @PORT@))\nprint('ESCAPED')"),
    Hostile("socketpair", "import _socket\n_socket.socketpair()\nprint('ESCAPED')"),
    Hostile("netlink socket", "import _socket\n"
            "_socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, 0)\nprint('ESCAPED')"),
    Hostile("DNS lookup", "import socket\nprint('ESCAPED', socket.gethostbyname('example.com'))"),
    Hostile("socket syscall through ctypes", _syscall(41, "1", "1", "0")),
    # -- creating processes -----------------------------------------------------------
    Hostile("os.fork", "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n"
            "print('ESCAPED')"),
    Hostile("os.posix_spawn", "import os\nos.posix_spawn('/bin/true', ['true'], {})\n"
            "print('ESCAPED')"),
    Hostile("subprocess.run", "import subprocess\nsubprocess.run(['/bin/true'])\nprint('ESCAPED')"),
    Hostile("os.system", "import os\nr = os.system('/bin/true')\n"
            "if r == 0:\n    print('ESCAPED')\nraise OSError(r)"),
    Hostile("os.execv", "import os\nos.execv('/bin/true', ['true'])"),
    Hostile("_posixsubprocess.fork_exec", "import _posixsubprocess, os\nr, w = os.pipe()\n"
            "args = [[b'/bin/true'], [b'/bin/true'], True, (w,), None, None, -1, -1, -1, -1, "
            "-1, -1, r, w, True, False, -1, None, None, None, -1, None, False]\n"
            "try:\n    pid = _posixsubprocess.fork_exec(*args)\nexcept TypeError:\n"
            "    pid = _posixsubprocess.fork_exec(*args[:-1])\nprint('ESCAPED', pid)"),
    Hostile("multiprocessing", "import multiprocessing as mp\n"
            "p = mp.get_context('fork').Process(target=print)\np.start()\nprint('ESCAPED')"),
    Hostile("fork through ctypes", _LIBC + "pid = libc.fork()\n"
            "if pid == 0:\n    os._exit(0)\nif pid > 0:\n    print('ESCAPED')\n"
            "raise OSError(ctypes.get_errno(), 'fork failed')"),
    Hostile("clone syscall through ctypes", _syscall(56, "17", "0", "0", "0", "0")),
    Hostile("vfork syscall through ctypes", _syscall(58)),
    Hostile("pty.fork", "import pty\npid, fd = pty.fork()\nprint('ESCAPED')"),
    # -- other processes ----------------------------------------------------------------
    Hostile("signal a host process", "import os, signal\nos.kill(@MARKER_PID@, signal.SIGKILL)\n"
            "print('ESCAPED')"),
    Hostile("see host processes", "import os\n"
            "pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
            "if @HOST_PID@ in pids or @MARKER_PID@ in pids or len(pids) > 3:\n"
            "    print('ESCAPED', pids)\n"
            "raise LookupError(f'only the sandbox is visible: {pids}')"),
    Hostile("kill every process we may", "import os, signal, time\n"
            "os.kill(-1, signal.SIGKILL)\ntime.sleep(0.5)\nraise RuntimeError('still here')"),
    Hostile("ptrace pid 1", _syscall(101, "16", "1", "0", "0")),
    Hostile("read another process's memory", "print('ESCAPED', open('/proc/1/mem', 'rb').read(1))"),
    # -- memory and disk --------------------------------------------------------------
    Hostile("memfd beyond the memory limit", "import os\nfd = os.memfd_create('x')\n"
            "chunk = b'x' * 2**20\nfor _ in range(2048):\n    os.write(fd, chunk)\n"
            "print('ESCAPED')"),
    Hostile("POSIX shared memory beyond the limit",
            "import os\nfd = os.open('/dev/shm/hold-@TAG@', os.O_CREAT | os.O_RDWR)\n"
            "chunk = b'x' * 2**20\nfor _ in range(2048):\n    os.write(fd, chunk)\n"
            "print('ESCAPED')"),
    Hostile("System V shared memory", _syscall(29, "0", str(2**30), str(0o1000 | 0o600))),
    Hostile("anonymous memory beyond the limit", "import mmap\n"
            "m = mmap.mmap(-1, 2**31)\nfor i in range(0, 2**31, 4096):\n    m[i] = 1\n"
            "print('ESCAPED')"),
    Hostile("a growing list", "x = []\nwhile True:\n    x.append(bytearray(2**20))"),
    Hostile("fill the disk", "chunk = b'x' * 2**20\nfor i in range(4096):\n"
            "    with open(f'/tmp/fill-@TAG@-{i}', 'wb') as f:\n        f.write(chunk)\n"
            "print('ESCAPED')"),
    Hostile("one huge file", "with open('big', 'wb') as f:\n    for _ in range(4096):\n"
            "        f.write(b'x' * 2**20)\nprint('ESCAPED')"),
    Hostile("a thread bomb", "import threading, time\nthreading.stack_size(65536)\n"
            "ts = [threading.Thread(target=time.sleep, args=(3,), daemon=True) "
            "for _ in range(2000)]\nfor t in ts:\n    t.start()\nprint('ESCAPED')"),
    # -- the kernel ---------------------------------------------------------------------
    Hostile("new user namespace", _syscall(272, str(0x10000000))),
    Hostile("mount a tmpfs", _LIBC + "r = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
            "if r == 0:\n    print('ESCAPED')\nraise OSError(ctypes.get_errno(), 'mount')"),
    Hostile("keyctl", _syscall(250, "0", "0")),
    Hostile("bpf", _syscall(321, "0", "0", "0")),
    Hostile("io_uring", _syscall(425, "8", "0")),
    Hostile("perf_event_open", _syscall(298, "0", "0", "-1", "-1", "0")),
    Hostile("become root", "import os\nos.setuid(0)\nprint('ESCAPED')"),
    Hostile("raise the address-space limit", "import resource\n"
            "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n"
            "print('ESCAPED')"),
    Hostile("chroot", "import os\nos.chroot('/tmp')\nprint('ESCAPED')"),
)


def render(program: Hostile, values: dict[str, object]) -> str:
    """The program's code with ``@KEY@`` placeholders replaced by ``repr(value)``."""
    code = program.code.replace("@TAG@", str(values["TAG"]))
    for key, value in values.items():
        code = code.replace(f"@{key}@", str(value) if isinstance(value, int) else repr(value))
    return code


def verdict(program: Hostile, result: dict) -> str | None:
    """Why ``result`` (an ExecutionResult as a dict) shows an escape, or ``None``."""
    text = f"{result.get('output') or ''}\n{result.get('value') or ''}"
    if "ESCAPED" in text:
        return f"{program.name}: the attack got through: {text.strip()[:300]}"
    if program.must_raise and result.get("error") is None:
        return f"{program.name}: ended without an error: {text.strip()[:300]}"
    return None


def run_all(values: dict[str, object], audit_hooks: tuple[bool, ...], resource_limits: str,
            workers: int = 4) -> list[dict]:
    """Run every program in a fresh sandbox per audit-hook setting, a few at a time.

    Returns one dict per run: the program's name, the hook setting, the result's fields,
    the host pid of its bwrap process and its cgroup folders.
    """
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import asdict

    from vf_math_python.sandbox import PythonSandbox, SandboxLimits

    limits = SandboxLimits(timeout=5, memory_mb=256, disk_mb=16, max_file_mb=64,
                           max_processes=32)

    def one(job: tuple[bool, Hostile]) -> dict:
        hook, program = job
        with PythonSandbox(limits, resource_limits=resource_limits, audit_hooks=hook) as box:
            result = box.run(render(program, values))
        return {"name": program.name, "audit_hooks": hook, **asdict(result),
                "pid": box.last_pid,
                "cgroup": box.last_cgroup.paths if box.last_cgroup else [],
                "info": box.last_info.as_dict() if box.last_info else None}

    jobs = [(hook, program) for hook in audit_hooks for program in PROGRAMS]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, jobs))
