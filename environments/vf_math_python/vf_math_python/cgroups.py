"""Per-sandbox cgroups: a memory limit that counts everything the sandbox holds in RAM
(its heap, files in its tmpfs folders, shared memory) and a limit on processes + threads.

Both cgroup versions are handled: v1 (one folder per controller, ``memory`` and ``pids``)
and v2 (one folder, with the controllers enabled for our subtree). Each sandbox gets
``<base>/sbx-<host pid>-<random>``; a folder whose host process is gone (e.g. killed with
``kill -9``) is reclaimed by :func:`reclaim_stale` when the next sandbox starts.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids")
BASE_NAME = "vf-sandbox"
_STALE = re.compile(r"^sbx-(\d+)-[0-9a-f]+$")


@dataclass(frozen=True)
class CgroupBase:
    """Where sandbox cgroups are made: ``folders`` maps a controller (v1) or ``"unified"``
    (v2) to the parent folder."""

    version: int
    folders: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"cgroup v{self.version} " + ", ".join(f for _, f in self.folders)


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


def find_cgroup_base() -> tuple[CgroupBase | None, str]:
    """A writable place for sandbox cgroups with both controllers, or ``(None, why)``."""
    reasons = []
    v1 = []
    for controller in CONTROLLERS:
        own = _own_cgroup(controller)
        root = Path("/sys/fs/cgroup") / controller
        if own is None or not root.is_dir():
            reasons.append(f"no cgroup v1 {controller} hierarchy")
            break
        v1.append((controller, str(root / own.lstrip("/") / BASE_NAME)))
    else:
        try:
            for _, folder in v1:
                os.makedirs(folder, exist_ok=True)
            base = CgroupBase(1, tuple(v1))
            SandboxCgroup.create(base, 64 * 2**20, 8).destroy()
            return base, ""
        except OSError as exc:
            reasons.append(f"cgroup v1 {v1[0][1]}: {exc}")
    own_v2 = _own_cgroup(None)
    mount = Path("/sys/fs/cgroup")
    if own_v2 is not None and (mount / "cgroup.controllers").is_file():
        parent = mount / own_v2.lstrip("/")
        folder = parent / BASE_NAME
        try:
            folder.mkdir(exist_ok=True)
            enabled = (folder / "cgroup.controllers").read_text().split()
            if not set(CONTROLLERS) <= set(enabled):
                (parent / "cgroup.subtree_control").write_text("+memory +pids")
            (folder / "cgroup.subtree_control").write_text("+memory +pids")
            base = CgroupBase(2, (("unified", str(folder)),))
            SandboxCgroup.create(base, 64 * 2**20, 8).destroy()
            return base, ""
        except OSError as exc:
            reasons.append(f"cgroup v2 {folder}: {exc}")
    elif not reasons:
        reasons.append("no cgroup v2 hierarchy")
    return None, "; ".join(reasons)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class SandboxCgroup:
    """One sandbox's cgroup (one folder per v1 controller, or one v2 folder)."""

    def __init__(self, base: CgroupBase, paths: list[str]) -> None:
        self.base = base
        self.paths = paths

    @classmethod
    def create(cls, base: CgroupBase, memory_bytes: int, max_pids: int) -> SandboxCgroup:
        name = f"sbx-{os.getpid()}-{secrets.token_hex(6)}"
        cgroup = cls(base, [])
        try:
            for controller, folder in base.folders:
                path = os.path.join(folder, name)
                os.mkdir(path)
                cgroup.paths.append(path)
                if controller in ("memory", "unified"):
                    cgroup._limit_memory(path, memory_bytes)
                if controller in ("pids", "unified"):
                    _write(os.path.join(path, "pids.max"), str(max_pids))
        except OSError:
            cgroup.destroy()
            raise
        return cgroup

    def _limit_memory(self, path: str, memory_bytes: int) -> None:
        if self.base.version == 1:
            _write(os.path.join(path, "memory.limit_in_bytes"), str(memory_bytes))
            swap = os.path.join(path, "memory.memsw.limit_in_bytes")
            if os.path.exists(swap):  # memory + swap: no way around the limit through swap
                _write(swap, str(memory_bytes))
            else:
                _write(os.path.join(path, "memory.swappiness"), "0")
        else:
            _write(os.path.join(path, "memory.max"), str(memory_bytes))
            swap = os.path.join(path, "memory.swap.max")
            if os.path.exists(swap):
                _write(swap, "0")

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(p, "cgroup.procs") for p in self.paths]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            try:
                with open(procs) as f:
                    found.update(int(line) for line in f if line.strip())
            except OSError:
                pass
        return sorted(found)

    def _read(self, v1_file: str, v2_file: str) -> str | None:
        for path in self.paths:
            name = v1_file if self.base.version == 1 else v2_file
            try:
                with open(os.path.join(path, name)) as f:
                    return f.read()
            except OSError:
                continue
        return None

    def oom_killed(self) -> bool:
        """Did the kernel kill a process of this cgroup for going over the memory limit?"""
        text = self._read("memory.oom_control", "memory.events") or ""
        match = re.search(r"^oom_kill (\d+)", text, re.MULTILINE)
        return bool(match and int(match.group(1)) > 0)

    def destroy(self, deadline_s: float = 5.0) -> None:
        """Kill whatever is still in the cgroup (by host pid), then remove its folders."""
        end = time.monotonic() + deadline_s
        remaining = list(self.paths)
        while remaining and time.monotonic() < end:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for path in list(remaining):
                try:
                    os.rmdir(path)
                    remaining.remove(path)
                except FileNotFoundError:
                    remaining.remove(path)
                except OSError:
                    pass
            if remaining:
                time.sleep(0.01)

    @property
    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self.paths)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def reclaim_stale(base: CgroupBase) -> int:
    """Remove sandbox cgroups whose host process is gone; returns how many were removed."""
    stale: dict[str, list[str]] = {}
    for _, folder in base.folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = _STALE.match(name)
            if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
                stale.setdefault(name, []).append(os.path.join(folder, name))
    for paths in stale.values():
        SandboxCgroup(base, paths).destroy(deadline_s=1.0)
    return len(stale)
