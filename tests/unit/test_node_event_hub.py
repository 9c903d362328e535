"""EventHub: bounded per-subscriber queues; a slow subscriber is closed, others keep going."""

from __future__ import annotations

import asyncio

import pytest

from node.event_hub import EventHub
from node.services import BlockCommitted, ChainEvent, Pending, TxStatusChanged


def _block(height: int) -> BlockCommitted:
    return BlockCommitted(height, bytes([height]) * 32, b"\x00" * 32, (), 1000 * height)


def test_events_reach_every_subscriber_in_order() -> None:
    async def run() -> tuple[list[ChainEvent], list[ChainEvent]]:
        hub = EventHub()
        first, second = hub.subscribe(8), hub.subscribe(8)
        events: list[ChainEvent] = [_block(1), TxStatusChanged(Pending(b"t" * 32)), _block(2)]
        for event in events:
            hub.publish(event)
        hub.close_all()
        return [e async for e in first], [e async for e in second]

    got_first, got_second = asyncio.run(run())
    assert [type(e).__name__ for e in got_first] == [
        "BlockCommitted",
        "TxStatusChanged",
        "BlockCommitted",
    ]
    assert got_first == got_second


def test_a_slow_subscriber_is_closed_on_overflow_and_the_others_are_not() -> None:
    async def run() -> tuple[bool, list[ChainEvent], bool, int, int]:
        hub = EventHub()
        slow, fast = hub.subscribe(2), hub.subscribe(16)
        for height in range(1, 4):  # the third event overflows the slow queue of 2
            hub.publish(_block(height))
        slow_received = [e async for e in slow]
        remaining = len(hub)
        fast.close()
        fast_received = [e async for e in fast]
        return slow.overflowed, slow_received, fast.overflowed, remaining, len(fast_received)

    slow_overflowed, slow_received, fast_overflowed, remaining, fast_count = asyncio.run(run())
    assert slow_overflowed and not fast_overflowed
    # Its backlog is dropped: the close is the next thing it sees, not blocks 1 and 2.
    assert slow_received == []
    assert remaining == 1
    assert fast_count == 3


def test_an_overflow_wakes_its_waiter_and_only_its_own() -> None:
    async def run() -> tuple[bool, bool, bool]:
        hub = EventHub()
        slow, fast = hub.subscribe(1), hub.subscribe(8)
        slow_waiter = asyncio.create_task(slow.wait_overflowed())
        fast_waiter = asyncio.create_task(fast.wait_overflowed())
        hub.publish(_block(1))
        await asyncio.sleep(0)
        before = slow_waiter.done()
        hub.publish(_block(2))  # the second overflows the queue of 1
        await asyncio.wait_for(slow_waiter, 1)
        fast.close()
        await asyncio.sleep(0)
        fast_woken = fast_waiter.done()
        fast_waiter.cancel()
        return before, slow_waiter.done(), fast_woken

    assert asyncio.run(run()) == (False, True, False)


def test_queue_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        EventHub().subscribe(0)
