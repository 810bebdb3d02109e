"""The sandbox's seccomp filters, compiled by libseccomp (through ``pyseccomp``).

Two filters, both "allow by default, refuse what the code never needs" (a refused call fails
with ``EPERM``, or ``ENOSYS`` for ``clone3`` so that the C library falls back to ``clone``,
whose flags can be checked). Calls for another architecture (e.g. 32-bit x86 syscalls from a
64-bit process) kill the process: libseccomp's default for foreign architectures.

- :func:`base_filter` is handed to bubblewrap (``--seccomp FD``) and holds from the moment
  the interpreter starts: sockets of every family, ``ptrace`` and cross-process memory
  access, mounts and namespaces (``mount``, ``unshare``, ``setns``, ``clone`` with namespace
  flags, ...), kernel keyrings, ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring``,
  module and kexec loading, ``memfd_create`` and System V shared memory and message queues
  (memory that would otherwise escape the size-limited folders), growing pipe buffers,
  and other administration calls.
- :func:`no_new_processes_filter` is installed by the worker itself just before the first
  piece of model code runs (the interpreter had to be started with ``execve`` first):
  ``execve``/``execveat``, ``fork``/``vfork`` and ``clone`` without ``CLONE_THREAD``.
  Threads still work.
"""

from __future__ import annotations

import errno
import tempfile

#: Calls refused from the start (EPERM).
DENIED_SYSCALLS = (
    # network and local sockets
    "socket", "socketpair",
    # other processes' memory and tracing
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # filesystems and namespaces
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at", "quotactl", "quotactl_fd", "swapon", "swapoff",
    "fanotify_init",
    # kernel interfaces with a history of privilege escalations
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # memory outside the size-limited folders and the address-space limit
    "memfd_create", "memfd_secret", "shmget", "shmat", "shmctl", "shmdt",
    "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
    "mq_open", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
    # machine administration
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "acct", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm", "vhangup", "personality",
    "lookup_dcookie", "uselib", "ustat", "sysfs", "nfsservctl",
)
#: Flags of ``clone`` that make new namespaces (refused even for threads).
CLONE_NAMESPACE_FLAGS = 0x7E020080  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
CLONE_THREAD = 0x00010000
F_SETPIPE_SZ = 1031
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
#: Calls refused once the worker is ready to run code (EPERM).
PROCESS_SYSCALLS = ("execve", "execveat", "fork", "vfork")


def _seccomp():  # type: ignore[no-untyped-def]
    """The ``pyseccomp`` module (libseccomp's API through ctypes)."""
    import pyseccomp

    return pyseccomp


def _known(sc, name: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        sc.resolve_syscall(sc.Arch.NATIVE, name)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def base_filter():  # type: ignore[no-untyped-def]
    """The filter bubblewrap installs (see the module docstring)."""
    sc = _seccomp()
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        if _known(sc, name):
            f.add_rule(deny, name)
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in _bits(CLONE_NAMESPACE_FLAGS):
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(deny, "fcntl", sc.Arg(1, sc.EQ, F_SETPIPE_SZ))
    for request in (TIOCSTI, TIOCLINUX):
        f.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    return f


def no_new_processes_filter():  # type: ignore[no-untyped-def]
    """The filter the worker adds before running code (see the module docstring)."""
    sc = _seccomp()
    f = sc.SyscallFilter(defaction=sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in PROCESS_SYSCALLS:
        if _known(sc, name):
            f.add_rule(deny, name)
    f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    return f


def _bits(mask: int) -> list[int]:
    return [1 << i for i in range(64) if mask >> i & 1]


def compile_bpf(f) -> bytes:  # type: ignore[no-untyped-def]
    """The filter as a classic BPF program (what ``seccomp(2)`` and ``bwrap --seccomp`` take)."""
    with tempfile.TemporaryFile() as sink:
        f.export_bpf(sink)
        sink.seek(0)
        return sink.read()
