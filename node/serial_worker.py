"""The node's one worker thread: execution and synced writes, in submission order.

The event loop must not wait on a block's execution or an fsync (issue 9), so
``NodeRuntime`` hands them to this thread and awaits the answer. That happens
several times a block (a WAL append per step group that persists, one
execution), so the hand-off's own cost counts: through ``run_in_executor``
on a one-thread ``ThreadPoolExecutor`` a round trip cost the node 187-279 us
of CPU here, against 135-259 us this way, 7-31 % less in four runs of
``python -m benchmarks.worker_roundtrip_cpu`` (docs/performance.md). Both
wake the other thread twice a call, which is most of either (the benchmark's
bare ping-pong floor: 56-70 us); the executor adds its
own ``concurrent.futures.Future``, a work item, a thread-count check and
the chaining of one future to the other.

A call is a (loop, future, function) triple on a ``SimpleQueue``; the thread
runs it and settles the future through ``loop.call_soon_threadsafe``. One
thread and a FIFO queue give submission order. A call whose caller was
cancelled before it started is skipped, as an executor skips a cancelled
work item; one already running finishes (its write is not torn).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class WorkerClosedError(RuntimeError):
    """``run`` after ``close``: the node is shutting down."""


class SerialWorker:
    """One thread; ``await run(f)`` is ``f()`` there, in the order the calls came."""

    def __init__(self, name: str = "veil-worker") -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._name = name
        self._thread: threading.Thread | None = None
        self._closed = False

    async def run(self, call: Callable[[], T]) -> T:
        if self._closed:
            raise WorkerClosedError("the worker thread is closed")
        if self._thread is None:  # started by the first call, as an executor's is
            # A daemon: a runtime that is never closed (a test's) must not hold
            # the interpreter open; the node closes it, which drains it first.
            self._thread = threading.Thread(
                target=_serve, args=(self._calls,), name=self._name, daemon=True
            )
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, call))
        return await future

    def close(self) -> None:
        """Run what is queued, then end the thread (``shutdown(wait=True)``'s contract)."""
        self._closed = True
        if self._thread is not None:
            self._calls.put(None)
            self._thread.join()


def _serve(calls: queue.SimpleQueue[_Call | None]) -> None:
    while (item := calls.get()) is not None:
        loop, future, call = item
        # Read across threads: at worst a call cancelled this instant still runs,
        # which an executor's work item allows too.
        if future.cancelled():
            continue
        try:
            result = call()
        except BaseException as exc:  # the caller gets it, as from an executor
            _answer(loop, _fail, future, exc)
        else:
            _answer(loop, _succeed, future, result)


def _answer(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[asyncio.Future[Any], Any], None],
    future: asyncio.Future[Any],
    value: object,
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
        loop.call_soon_threadsafe(settle, future, value)


def _succeed(future: asyncio.Future[Any], result: object) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
