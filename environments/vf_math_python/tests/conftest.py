"""Shared fixtures: finding live sandbox processes on the host."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vf_math_python.isolation import UID_BASE, UID_SPAN


def live_sandbox_processes() -> list[int]:
    """Host pids of live processes (zombies aside) running as a throwaway sandbox uid."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if "\nState:\tZ" in status:
            continue  # already dead, waiting for its parent (init, without a PID namespace)
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                if UID_BASE <= uid < UID_BASE + UID_SPAN:
                    pids.append(int(entry.name))
    return pids


@pytest.fixture
def sandbox_pids() -> Callable[[], list[int]]:
    """A function listing live sandbox processes (empty when no sandbox is running)."""
    return live_sandbox_processes
