"""Shared fixtures: finding live sandbox processes of this test run on the host.

The machine may be shared: only processes started by this test process (its descendants)
or running as a uid one of its sandboxes used are counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from vf_math_python.isolation import UID_BASE, UID_SPAN


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, uid) of every live process (zombies aside)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if "\nState:\tZ" in status:
            continue  # already dead, waiting for its parent
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        found[int(entry.name)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]))
    return found


def live_sandbox_processes(uids: Iterable[int] = ()) -> list[int]:
    """Live processes running as a throwaway sandbox uid that descend from this process,
    or that run as one of ``uids``."""
    wanted = set(uids)
    table = _processes()
    me = os.getpid()

    def descends(pid: int) -> bool:
        seen = set()
        while pid > 1 and pid not in seen:
            seen.add(pid)
            pid = table.get(pid, (0, 0))[0]
            if pid == me:
                return True
        return False

    return [pid for pid, (_, uid) in table.items()
            if uid in wanted or (UID_BASE <= uid < UID_BASE + UID_SPAN and descends(pid))]


@pytest.fixture
def sandbox_pids() -> Callable[..., list[int]]:
    """A function listing live sandbox processes of this run (empty when none runs)."""
    return live_sandbox_processes
