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
import queue
import threading
from collections.abc import Callable
from typing import Any

_IDLE_EXIT_S = 30.0  # an idle worker exits after this long


class RewardTimeout(TimeoutError):
    """A reward function did not return within its time limit."""


class _DaemonPool:
    """Daemon worker threads; a new one starts whenever no worker is idle. Each task hands
    its outcome to an asyncio future on the loop that submitted it."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0

    def submit(self, func: Callable[..., Any], kwargs: dict[str, Any],
               loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> None:
        with self._lock:
            if self._idle == 0:
                self._count += 1
                threading.Thread(
                    target=self._work, name=f"vf-reward-{self._count}", daemon=True
                ).start()
            else:
                self._idle -= 1  # that idle worker will take this task
            self._tasks.put((func, kwargs, loop, future))

    def _work(self) -> None:
        while True:
            try:
                func, kwargs, loop, future = self._tasks.get(timeout=_IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and self._tasks.empty():
                        self._idle -= 1
                        return
                continue
            if not future.cancelled():  # read across threads: at worst the call is wasted
                try:
                    outcome = (True, func(**kwargs))
                except BaseException as exc:  # delivered to the awaiting coroutine
                    outcome = (False, exc)
                try:
                    loop.call_soon_threadsafe(_deliver, future, outcome)
                except RuntimeError:  # the loop has closed: nobody waits for this any more
                    pass
                del outcome
            del func, kwargs, loop, future
            with self._lock:
                self._idle += 1


def _deliver(future: asyncio.Future, outcome: tuple[bool, Any]) -> None:
    if future.done():  # timed out or cancelled meanwhile
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _expire(future: asyncio.Future, timeout: float) -> None:
    if not future.done():
        future.set_exception(RewardTimeout(f"did not return within {timeout:g} s"))


_POOL = _DaemonPool()


async def call_in_thread(func: Callable[..., Any], kwargs: dict[str, Any], timeout: float | None) -> Any:
    """``func(**kwargs)`` in a worker thread; raises :class:`RewardTimeout` after ``timeout``
    seconds (``None``: no limit). The thread is left to finish on its own."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    _POOL.submit(func, kwargs, loop, future)
    if timeout is None:
        return await future
    timer = loop.call_later(timeout, _expire, future, timeout)
    try:
        return await future
    finally:
        timer.cancel()
