"""return_freed_memory: freed large blocks leave the process at once (measured in fresh
interpreters, with and without it), and a user's own allocator settings are left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROGRAM = r"""
import json, sys, threading
from verifiers_trainer.grpo.host_memory import return_freed_memory
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
applied = return_freed_memory() if sys.argv[1] == "on" else False
big, small = [], []
def work():  # in a thread, as torch's workers allocate: a non-main arena
    first = bytearray(b"x" * (4 << 20)); del first  # glibc's mmap threshold rises to 4 MiB
    for _ in range(200):  # 1 MiB blocks with small survivors between them
        big.append(bytearray(b"x" * (1 << 20)))
        small.append(bytearray(b"y" * 1000))
before = rss_mb()
t = threading.Thread(target=work); t.start(); t.join()
peak = rss_mb()
big.clear()
print(json.dumps({"applied": applied, "held": peak - before, "kept": rss_mb() - before}))
"""


def run(mode: str, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_blocks_are_returned_and_user_settings_win():
    off, on = run("off"), run("on")
    assert off["held"] > 150 and on["held"] > 150  # both really held 200 MiB
    assert on["applied"] is True
    assert off["kept"] > 150  # glibc's default keeps the freed blocks ...
    assert on["kept"] < 30  # ... with return_freed_memory they are gone
    for setting in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):  # the user's: left alone
        assert run("on", **{setting: "1000000000"})["applied"] is False
