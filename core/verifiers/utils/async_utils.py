"""Running async code from sync callers, and calling sync-or-async functions uniformly."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Public: helpers other packages (the trainer among them) may use.
__all__ = ["at_loop_end", "in_event_loop", "maybe_await", "run_sync", "sync_or_async"]


async def maybe_await(value: Any, *args: Any, **kwargs: Any) -> Any:
    """Await ``value`` if it is awaitable, else return it.

    verifiers 0.1.x's form, ``await maybe_await(func, *args, **kwargs)``, calls ``func``
    first (it is the form when arguments are given, or ``value`` is a plain callable)."""
    if args or kwargs or (callable(value) and not inspect.isawaitable(value)):
        value = value(*args, **kwargs)
    if inspect.isawaitable(value):
        return await value
    return value


async def _runs_at_loop_end(cleanup: Callable[[], Any]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await maybe_await(cleanup())


async def at_loop_end(cleanup: Callable[[], Any]) -> AsyncGenerator[None, None]:
    """Have ``cleanup()`` (sync or async) run on the running loop when ``asyncio.run``
    ends it (``loop.shutdown_asyncgens()``): e.g. closing connections opened on that loop.
    Returns the handle that waits for it; keep a reference for as long as it should wait
    (the loop holds it only weakly)."""
    handle = _runs_at_loop_end(cleanup)
    await handle.__anext__()  # registers it with the loop's async-generator hooks
    return handle


def in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code.

    Inside a running event loop (a notebook, an async test) this raises with a hint instead
    of deadlocking: await the async variant there.
    """
    if in_event_loop():
        coro.close()
        raise RuntimeError(
            "This synchronous call was made inside a running event loop. "
            "Await the async variant instead (e.g. `await env.a_generate(...)`)."
        )
    return asyncio.run(coro)


def sync_or_async(func: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Any]:
    """Make an ``async def`` method usable from both worlds.

    Called inside a running event loop it returns the coroutine (to be awaited); called from
    synchronous code it runs the coroutine to completion and returns the result. verifiers
    0.1.x's guides use both forms (``await rubric.score_rollout(...)`` and ``env.rollout(...)``
    in a plain loop).
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        coro = func(*args, **kwargs)
        if in_event_loop():
            return coro
        return asyncio.run(coro)

    wrapper.__wrapped_async__ = func  # type: ignore[attr-defined]
    return wrapper
