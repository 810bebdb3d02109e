"""Fewer garbage collections while many rollouts are in flight.

Each rollout allocates thousands of small containers (messages, states, response
objects). With CPython's default first threshold (700 allocations) the cyclic collector
runs every few rollouts and, as finished results pile up, spends most of its time walking
objects that are still alive: about a third of the client's time in 2,000 single-turn
rollouts (``benchmarks/bench_rollouts.py``). :func:`fewer_collections` raises the first
threshold for the duration of a generation and puts the previous thresholds back when the
last concurrent generation ends. Reference counting still frees everything that is not in
a cycle at once; only cyclic garbage waits longer (50,000 allocations at most).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["GENERATION_THRESHOLD", "fewer_collections"]

#: The first-generation threshold while rollouts run.
GENERATION_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] | None = None


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise ``gc``'s first threshold to :data:`GENERATION_THRESHOLD` (never lower it) inside
    the block; nested and concurrent blocks share one change, undone by the last to end,
    unless someone else changed the thresholds meanwhile."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            current = gc.get_threshold()
            if current[0] and current[0] < GENERATION_THRESHOLD:  # 0: collection is off
                _saved = current
                gc.set_threshold(GENERATION_THRESHOLD, *current[1:])
            else:
                _saved = None
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                if gc.get_threshold()[0] == GENERATION_THRESHOLD:  # still ours to undo
                    gc.set_threshold(*_saved)
                _saved = None
