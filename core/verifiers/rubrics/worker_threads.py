"""Running synchronous reward functions off the event loop, with a time limit.

A synchronous reward function runs in a worker thread, so the event loop keeps serving
other rollouts (model requests, tools, async reward functions) while it computes. The
caller waits at most ``timeout`` seconds; past that the call is reported as a
:class:`RewardTimeout` and scoring moves on.

A thread cannot be killed: a function that runs away keeps its worker busy until it
returns on its own. The pool therefore never waits for a free worker (it starts another),
its threads are daemon threads (a stuck one never blocks the interpreter from exiting), and
such a function cannot delay other rollouts beyond sharing the CPU with them. Code that
must be stopped for sure (e.g. symbolic math) belongs in a subprocess with a hard limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any

_IDLE_EXIT_S = 30.0  # an idle worker exits after this long


class RewardTimeout(TimeoutError):
    """A reward function did not return within its time limit."""


class _DaemonPool:
    """Daemon worker threads; a new one starts whenever no worker is idle."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0

    def submit(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._idle == 0:
                self._count += 1
                threading.Thread(
                    target=self._work, name=f"vf-reward-{self._count}", daemon=True
                ).start()
            else:
                self._idle -= 1  # that idle worker will take this task
            self._tasks.put((future, func, kwargs))
        return future

    def _work(self) -> None:
        while True:
            try:
                future, func, kwargs = self._tasks.get(timeout=_IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and self._tasks.empty():
                        self._idle -= 1
                        return
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(func(**kwargs))
                except BaseException as exc:  # delivered to the awaiting coroutine
                    future.set_exception(exc)
            del future, func, kwargs
            with self._lock:
                self._idle += 1


_POOL = _DaemonPool()


async def call_in_thread(func: Callable[..., Any], kwargs: dict[str, Any], timeout: float | None) -> Any:
    """``func(**kwargs)`` in a worker thread; raises :class:`RewardTimeout` after ``timeout``
    seconds (``None``: no limit). The thread is left to finish on its own."""
    future = asyncio.wrap_future(_POOL.submit(func, kwargs))
    if timeout is None:
        return await future
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        raise RewardTimeout(f"did not return within {timeout:g} s") from None
