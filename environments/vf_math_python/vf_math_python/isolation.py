"""The kernel layers around a sandboxed interpreter, and the bubblewrap command that sets
them up.

Every sandbox runs under bubblewrap (``bwrap``) with:

- new mount, PID, network, IPC, UTS and cgroup namespaces (plus a user namespace when not
  root); the root is a read-only tmpfs holding only read-only binds of ``/usr`` (and the
  ``/bin``, ``/lib*`` links), the interpreter's prefix and import path, and the worker
  script; a fresh read-only ``/proc`` for the sandbox's own PID namespace; a minimal
  read-only ``/dev``; and two private, size-limited tmpfs mounts, ``/tmp`` (the working
  folder, also ``$HOME`` and ``/var/tmp``) and ``/dev/shm``: the only writable places;
- no capabilities (as root, ``CAP_SETUID``/``CAP_SETGID`` are kept only until the worker has
  switched to a throwaway uid, which clears them), ``no_new_privs``, and the seccomp
  filters of :mod:`vf_math_python.seccomp_filters`;
- ``--die-with-parent``: the sandbox dies with the host process, even on ``kill -9``.

Memory and processes are bounded by a per-sandbox cgroup (:mod:`vf_math_python.cgroups`);
where none can be made (an ordinary user without cgroup delegation) the sandbox refuses to
run unless ``resource_limits="rlimit"`` is given explicitly (see the README for what that
mode does and does not bound).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from vf_math_python.cgroups import CgroupBase, find_cgroup_base, reclaim_stale
from vf_math_python.errors import SandboxSetupError

#: Throwaway uids (root only) are drawn from [UID_BASE, UID_BASE + UID_SPAN): far above real
#: accounts and the usual subordinate-id ranges of container runtimes.
UID_BASE = 2_000_000_000
UID_SPAN = 100_000_000
#: Where the worker script appears inside the sandbox.
WORKER_PATH = "/opt/vf-sandbox/sandbox_worker.py"
RESOURCE_LIMIT_MODES = ("cgroup", "rlimit")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
INSTALL_BWRAP = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; "
                 "Fedora: `dnf install bubblewrap`)")


@dataclass(frozen=True)
class Isolation:
    """What this machine offers for one interpreter (see :func:`detect_isolation`)."""

    bwrap: str | None
    bwrap_version: str
    is_root: bool
    cgroup: CgroupBase | None
    read_only_roots: tuple[str, ...]
    #: ``(layer, "why. how to fix")`` for every layer that cannot be set up here.
    problems: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> dict[str, object]:
        return {
            "engine": f"bubblewrap {self.bwrap_version}" if self.bwrap else None,
            "namespaces": ["mount", "pid", "net", "ipc", "uts", "cgroup"]
                          + ([] if self.is_root else ["user"]),
            "seccomp": not any(layer == "seccomp" for layer, _ in self.problems),
            "cgroup": self.cgroup.describe() if self.cgroup else None,
            "uid": "throwaway uid" if self.is_root else "the caller's uid (user namespace)",
            "read_only_roots": list(self.read_only_roots),
            "problems": [f"{layer}: {why}" for layer, why in self.problems],
        }

    def require(self, resource_limits: str) -> None:
        """Raise :class:`SandboxSetupError` naming each requested layer that is missing."""
        if resource_limits not in RESOURCE_LIMIT_MODES:
            raise ValueError(f"resource_limits must be one of {RESOURCE_LIMIT_MODES}, "
                             f"got {resource_limits!r}.")
        missing = [(layer, why) for layer, why in self.problems
                   if layer != "cgroup" or resource_limits == "cgroup"]
        if missing:
            lines = "\n".join(f"- {layer}: {why}" for layer, why in missing)
            raise SandboxSetupError(
                "The python sandbox cannot run here; it refuses to run with fewer layers.\n"
                + lines)
        if resource_limits == "rlimit":
            warnings.warn(
                "python sandbox: resource_limits='rlimit' bounds memory by RLIMIT_AS plus the "
                "tmpfs sizes only (no memory cgroup: kernel memory such as many small files "
                "is not counted); use it only where a cgroup cannot be had.",
                RuntimeWarning, stacklevel=3)


@functools.lru_cache(maxsize=8)
def detect_isolation(python_executable: str) -> Isolation:
    """Probe bubblewrap, seccomp and cgroups for ``python_executable`` (cached)."""
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    is_root = os.geteuid() == 0
    bwrap = shutil.which("bwrap")
    version = ""
    roots = tuple(read_only_roots(python_executable))
    if bwrap is None:
        problems.append(("bubblewrap", f"no `bwrap` program on PATH; {INSTALL_BWRAP}."))
    else:
        version, why = _probe_bwrap(bwrap, is_root, roots)
        if why:
            fix = ("" if is_root else " As an ordinary user bubblewrap needs unprivileged "
                   "user namespaces: enable them (`sysctl kernel.unprivileged_userns_clone=1`,"
                   " or `kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu) or run "
                   "as root.")
            problems.append(("namespaces", f"`bwrap` could not start a sandbox: {why}.{fix}"))
    try:
        from vf_math_python.seccomp_filters import base_filter, compile_bpf

        compile_bpf(base_filter())
    except (ImportError, OSError, RuntimeError, ValueError, AttributeError) as exc:
        problems.append(("seccomp", f"cannot compile the seccomp filter ({exc}); install "
                                    "libseccomp (`apt-get install libseccomp2`) and the "
                                    "`pyseccomp` package."))
    cgroup, why = find_cgroup_base()
    if cgroup is None:
        who = "root" if is_root else f"uid {os.geteuid()}"
        problems.append(("cgroup", f"no writable memory + pids cgroup for {who} ({why}). Run "
                                   "as root, or get a delegated cgroup v2 subtree (e.g. "
                                   "`systemd-run --user --scope -p Delegate=yes ...`), or "
                                   "pass resource_limits='rlimit' to accept weaker limits."))
    else:
        reclaimed = reclaim_stale(cgroup)
        if reclaimed:
            notes.append(f"reclaimed {reclaimed} cgroup(s) left by dead processes")
    return Isolation(bwrap=bwrap, bwrap_version=version, is_root=is_root, cgroup=cgroup,
                     read_only_roots=roots, problems=tuple(problems), notes=tuple(notes))


def _probe_bwrap(bwrap: str, is_root: bool, roots: tuple[str, ...]) -> tuple[str, str]:
    """bwrap's version, and why a minimal sandbox failed (``""`` when it worked)."""
    try:
        done = subprocess.run([bwrap, "--version"], capture_output=True, timeout=10)
        version = done.stdout.decode(errors="replace").split()[-1] if done.stdout else "?"
        probe = [*namespace_args(is_root), *filesystem_args(roots, 1 << 20, 1 << 20),
                 "--", "/usr/bin/true"]
        done = subprocess.run([bwrap, *probe], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired, IndexError) as exc:
        return "", str(exc)
    if done.returncode != 0:
        return version, done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
    return version, ""


@functools.lru_cache(maxsize=8)
def read_only_roots(python_executable: str) -> list[str]:
    """Folders bound read-only into the sandbox: the interpreter's prefixes and its import
    path (as ``python -I`` sees it), minus what ``/usr`` already covers."""
    script = ("import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, "
              "sys.exec_prefix, sys.base_exec_prefix, *sys.path]))")
    try:
        done = subprocess.run([python_executable, "-I", "-c", script], capture_output=True,
                              timeout=60, check=True)
        paths = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise SandboxSetupError(f"cannot run the sandbox interpreter {python_executable!r}: "
                                f"{exc}") from None
    paths.append(os.path.dirname(os.path.abspath(python_executable)))
    candidates = set()
    for path in paths:
        if not path or not os.path.isabs(path) or not os.path.isdir(path):
            continue
        for form in {os.path.normpath(path), os.path.realpath(path)}:
            if form == "/" or any(_under(form, d) for d in _SYSTEM_DIRS):
                continue
            candidates.add(form)
    roots = sorted(candidates)
    return [r for r in roots if not any(r != o and _under(r, o) for o in roots)]


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def namespace_args(is_root: bool) -> list[str]:
    """Namespaces, capabilities and process options."""
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if not is_root:  # as root, a user namespace would map the sandbox to host uid 0
        args += ["--unshare-user", "--disable-userns"]
    args += ["--cap-drop", "ALL"]
    if is_root:  # only until the worker's setuid() to a throwaway uid, which clears them
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return args


def filesystem_args(roots: tuple[str, ...] | list[str], tmp_bytes: int, shm_bytes: int,
                    files: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """The minimal root: read-only system and interpreter folders, two size-limited tmpfs."""
    args: list[str] = []
    for folder in _SYSTEM_DIRS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    args += ["--perms", "0755", "--dir", "/etc",
             "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    # The private /tmp comes before the interpreter's folders: an interpreter or venv that
    # lives under the host's /tmp is then bound on top of it, read-only, instead of being
    # hidden by it.
    args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    # bubblewrap would copy the modes of the host's folders above a bind (a 0700 /root
    # would hide a pyenv interpreter from the throwaway uid): make them 0755 first.
    parents: list[str] = []
    for target in [*roots, *(t for _, t in files)]:
        for parent in [str(p) for p in reversed(Path(target).parents)][1:]:
            if parent not in parents and parent != "/tmp" and not any(
                    _under(parent, d) for d in _SYSTEM_DIRS):
                parents.append(parent)
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for root in roots:
        args += ["--ro-bind", root, root]
    for source, target in files:
        args += ["--ro-bind", source, target]
    args += [
        "--proc", "/proc", "--remount-ro", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--size", str(shm_bytes), "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev",
        "--perms", "0755", "--dir", "/var", "--symlink", "/tmp", "/var/tmp",
        "--remount-ro", "/",
        "--chdir", "/tmp",
    ]
    return args


def bwrap_command(isolation: Isolation, worker_script: str, tmp_bytes: int, shm_bytes: int,
                  seccomp_fd: int, env: dict[str, str]) -> list[str]:
    """The ``bwrap ...`` prefix that runs a command in a fresh sandbox."""
    assert isolation.bwrap is not None
    args = [isolation.bwrap, *namespace_args(isolation.is_root),
            *filesystem_args(isolation.read_only_roots, tmp_bytes, shm_bytes,
                             ((worker_script, WORKER_PATH),)),
            "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--seccomp", str(seccomp_fd), "--"]
    return args


def throwaway_uid() -> int:
    """A uid for one sandbox, unlikely to belong to anyone (or to another sandbox)."""
    import secrets

    return UID_BASE + secrets.randbelow(UID_SPAN)


def in_sandbox_python(python_executable: str) -> str:
    """The interpreter's path inside the sandbox (the same path: its folder is bound)."""
    return os.path.abspath(python_executable) if python_executable else sys.executable
