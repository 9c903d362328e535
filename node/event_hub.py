"""``EventHub``: fan chain events out to subscribers, each with a bounded queue.

Publishing never waits: a subscriber whose queue is full is closed and
marked ``overflowed`` (the API closes its WebSocket with a code saying so),
so one slow reader cannot hold back the runtime or grow its memory. Its
backlog is dropped at once: the close is what it should see next, not
``max_queue`` events it has already fallen behind on (it reads what it
missed from the blocks after it reconnects).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from node.services import ChainEvent

_CLOSED = None


class Subscription:
    """One subscriber's queue; iterate it to receive events until closed."""

    def __init__(self, hub: EventHub, max_queue: int) -> None:
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be a positive int, got {max_queue!r}")
        self._hub = hub
        # One slot more than the bound, for the close marker.
        self._queue: asyncio.Queue[ChainEvent | None] = asyncio.Queue(max_queue + 1)
        self._max_queue = max_queue
        self._closed = False
        self.overflowed = False
        self._overflow = asyncio.Event()

    def offer(self, event: ChainEvent) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._max_queue:
            while not self._queue.empty():
                self._queue.get_nowait()
            self.overflowed = True
            self._overflow.set()
            self.close()
            return
        self._queue.put_nowait(event)

    async def wait_overflowed(self) -> None:
        """Return once the subscriber has overflowed (never, if it keeps up): the API
        waits on it while a send to a reader that stopped reading is stuck."""
        await self._overflow.wait()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_CLOSED)
            self._hub.discard(self)

    def __aiter__(self) -> AsyncIterator[ChainEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ChainEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


class EventHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, max_queue: int) -> Subscription:
        subscription = Subscription(self, max_queue)
        self._subscribers.add(subscription)
        return subscription

    def discard(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, event: ChainEvent) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(event)

    def close_all(self) -> None:
        for subscription in list(self._subscribers):
            subscription.close()
