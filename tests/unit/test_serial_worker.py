"""The node's worker thread: one thread, submission order, errors to the caller,
cancelled calls skipped, and ``close`` runs what is queued."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

import pytest

from node.serial_worker import SerialWorker, WorkerClosedError


def test_calls_run_on_one_other_thread_in_submission_order() -> None:
    worker = SerialWorker()
    ran: list[tuple[int, int]] = []

    def call(index: int) -> int:
        time.sleep(0.001 * (index % 3))  # uneven work must not reorder them
        ran.append((index, threading.get_ident()))
        return index * 10

    async def scenario() -> list[int]:
        return await asyncio.gather(*(worker.run(functools.partial(call, i)) for i in range(40)))

    try:
        assert asyncio.run(scenario()) == [i * 10 for i in range(40)]
    finally:
        worker.close()
    assert [index for index, _ in ran] == list(range(40))
    threads = {ident for _, ident in ran}
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_an_exception_reaches_the_caller_and_the_thread_lives_on() -> None:
    worker = SerialWorker()

    def fail() -> None:
        raise OSError(28, "No space left on device")

    async def scenario() -> None:
        with pytest.raises(OSError, match="No space left"):
            await worker.run(fail)
        assert await worker.run(lambda: 7) == 7

    try:
        asyncio.run(scenario())
    finally:
        worker.close()


def test_a_call_cancelled_before_it_started_is_skipped() -> None:
    worker = SerialWorker()
    gate = threading.Event()
    ran: list[str] = []

    def note(name: str) -> None:
        if name == "first":
            gate.wait(10)
        ran.append(name)

    async def scenario() -> None:
        first = asyncio.ensure_future(worker.run(functools.partial(note, "first")))
        second = asyncio.ensure_future(worker.run(functools.partial(note, "second")))
        await asyncio.sleep(0.01)  # both queued; the first holds the thread
        second.cancel()
        await asyncio.sleep(0)
        gate.set()
        await first
        await worker.run(functools.partial(note, "third"))
        assert second.cancelled()

    try:
        asyncio.run(scenario())
    finally:
        worker.close()
    assert ran == ["first", "third"]


def test_close_runs_what_is_queued_then_refuses_more() -> None:
    worker = SerialWorker()
    ran: list[int] = []

    async def scenario() -> None:
        calls = [
            asyncio.ensure_future(worker.run(functools.partial(ran.append, i))) for i in range(5)
        ]
        await asyncio.sleep(0)  # queued, not awaited to the end
        worker.close()
        assert ran == list(range(5))
        await asyncio.gather(*calls)
        with pytest.raises(WorkerClosedError):
            await worker.run(lambda: None)

    asyncio.run(scenario())


def test_close_without_a_call_starts_no_thread() -> None:
    before = threading.active_count()
    SerialWorker().close()
    assert threading.active_count() == before
