"""What the host can use to isolate a sandboxed process, detected once per process.

Layers, each used when the platform allows it (:func:`detect_isolation` says which):

- **namespaces**: ``unshare --net --pid --ipc --fork --kill-child`` (util-linux). A fresh
  network namespace has only a loopback device that is down: no network at all. In a fresh
  PID namespace the sandboxed interpreter is PID 1; when it dies the kernel kills every
  process left in the namespace, and it cannot see or signal host processes. Needs root
  (or unprivileged user namespaces, tried with ``--map-root-user`` when not root).
- **pids cgroup**: a per-sandbox cgroup (v1 ``pids`` hierarchy, or v2 when the ``pids``
  controller is enabled for our cgroup) with ``pids.max``: a cap on processes and threads
  the kernel enforces for root too, and a list of leftover processes to kill.
- **uid drop**: as root, the worker switches to a throwaway uid (so ``RLIMIT_NPROC`` is
  enforced, files of other users are not writable, host processes cannot be signalled).
  When the interpreter lives in a folder other users cannot read (e.g. pyenv under
  ``/root``), the worker keeps ``CAP_DAC_READ_SEARCH`` so it can still import modules.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

NAMESPACE_FLAGS = ("--net", "--pid", "--ipc", "--fork", "--kill-child")
#: Throwaway uids are drawn from [UID_BASE, UID_BASE + UID_SPAN): far above real accounts
#: and the usual subordinate-id ranges of container runtimes.
UID_BASE = 2_000_000_000
UID_SPAN = 100_000_000


@dataclass(frozen=True)
class Isolation:
    """The isolation layers available on this machine (for one Python executable)."""

    unshare_prefix: tuple[str, ...] = ()
    cgroup_base: str | None = None
    can_drop_uid: bool = False
    interpreter_world_readable: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def namespaces(self) -> bool:
        return bool(self.unshare_prefix)

    def describe(self) -> dict[str, object]:
        return {
            "namespaces (net, pid, ipc)": self.namespaces,
            "pids cgroup": self.cgroup_base is not None,
            "uid drop": self.can_drop_uid,
            "notes": list(self.notes),
        }


@functools.lru_cache(maxsize=8)
def detect_isolation(python_executable: str) -> Isolation:
    """Probe namespaces, cgroups and uid dropping (cached per executable)."""
    notes: list[str] = []
    prefix = _probe_unshare(notes)
    is_root = os.geteuid() == 0
    cgroup = _probe_cgroup(notes) if is_root else None
    readable = _interpreter_world_readable(python_executable)
    if not is_root:
        notes.append("not running as root: no uid drop, no pids cgroup and no RLIMIT_NPROC "
                     "(it would count all of this user's processes); process creation is "
                     "stopped by the audit hook, and the PID namespace kills leftovers")
    return Isolation(
        unshare_prefix=prefix,
        cgroup_base=cgroup,
        can_drop_uid=is_root,
        interpreter_world_readable=readable,
        notes=tuple(notes),
    )


def _probe_unshare(notes: list[str]) -> tuple[str, ...]:
    binary = shutil.which("unshare")
    if binary is None:
        notes.append("no `unshare` binary: no network/PID namespaces (audit hook only)")
        return ()
    candidates = [(binary, *NAMESPACE_FLAGS)]
    if os.geteuid() != 0:
        candidates = [(binary, "--map-root-user", *NAMESPACE_FLAGS)]
    for prefix in candidates:
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            notes.append(f"`unshare` failed to run: {exc}")
            continue
        if done.returncode == 0:
            return prefix
        reason = done.stderr.decode(errors="replace").strip()
        notes.append(f"`{' '.join(prefix)} true` failed ({reason}): no namespaces")
    return ()


def _own_cgroup(controller: str | None) -> str | None:
    """Our cgroup path in the v1 ``controller`` hierarchy, or the v2 path (``None``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if controller is None and parts[0] == "0" and parts[1] == "":
            return parts[2]
        if controller is not None and controller in parts[1].split(","):
            return parts[2]
    return None


def _probe_cgroup(notes: list[str]) -> str | None:
    """A folder under which per-sandbox pids cgroups can be made, or ``None``."""
    candidates = []
    v1_root = Path("/sys/fs/cgroup/pids")
    own_v1 = _own_cgroup("pids")
    if v1_root.is_dir() and own_v1 is not None:
        candidates.append(v1_root / own_v1.lstrip("/"))
    own_v2 = _own_cgroup(None)
    for mount in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if own_v2 is not None and (mount / "cgroup.controllers").is_file():
            candidates.append(mount / own_v2.lstrip("/"))
    for parent in candidates:
        base = parent / "vf-sandbox"
        try:
            base.mkdir(exist_ok=True)
            if not (base / "cgroup.procs").exists():
                raise OSError("not a cgroup folder")
            if not (base / "pids.max").exists():  # v2: enable the pids controller below us
                (parent / "cgroup.subtree_control").write_text("+pids")
                if not (base / "pids.max").exists():
                    raise OSError("pids controller unavailable")
            if (base / "cgroup.controllers").exists():
                (base / "cgroup.subtree_control").write_text("+pids")
            probe = SandboxCgroup.create(str(base), 4)
            probe.destroy()
            return str(base)
        except OSError as exc:
            notes.append(f"pids cgroup under {parent} unavailable: {exc}")
    if not candidates:
        notes.append("no pids cgroup hierarchy found")
    return None


def _interpreter_world_readable(python_executable: str) -> bool:
    """Can a stranger (``other`` permission bits) import from this interpreter's folders?"""
    if python_executable == sys.executable:
        paths = [p for p in sys.path if p and os.path.isabs(p)]
    else:
        try:
            done = subprocess.run(
                [python_executable, "-I", "-c", "import sys, json; print(json.dumps(sys.path))"],
                capture_output=True, timeout=30, check=True,
            )
            paths = [p for p in json.loads(done.stdout) if p and os.path.isabs(p)]
        except (OSError, subprocess.SubprocessError, ValueError):
            return False
    paths.append(os.path.dirname(os.path.realpath(python_executable)))
    return all(_world_readable_dir(p) for p in paths if os.path.isdir(p))


def _world_readable_dir(path: str) -> bool:
    real = Path(os.path.realpath(path))
    for folder in [real, *real.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            return False
    return bool(real.stat().st_mode & stat.S_IROTH)


def throwaway_uid() -> int:
    """A uid for one sandbox, unlikely to belong to anyone (or to another sandbox)."""
    return UID_BASE + secrets.randbelow(UID_SPAN)


class SandboxCgroup:
    """One sandbox's pids cgroup: created with a ``pids.max``, destroyed with its processes."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def create(cls, base: str, max_pids: int) -> SandboxCgroup:
        path = os.path.join(base, f"sbx-{os.getpid()}-{secrets.token_hex(6)}")
        os.mkdir(path)
        cgroup = cls(path)
        try:
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(max_pids))
        except OSError:
            cgroup.destroy()
            raise
        return cgroup

    @property
    def procs_file(self) -> str:
        return os.path.join(self.path, "cgroup.procs")

    def pids(self) -> list[int]:
        try:
            with open(self.procs_file) as f:
                return [int(line) for line in f if line.strip()]
        except OSError:
            return []

    def peak(self) -> int | None:
        try:
            with open(os.path.join(self.path, "pids.peak")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def destroy(self, deadline_s: float = 5.0) -> None:
        """Kill whatever is still in the cgroup (by host pid), then remove it."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)
