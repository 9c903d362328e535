"""``GET /v1/events``: a WebSocket of committed blocks and tx status changes.

Each subscriber has a bounded queue (``node.services.EventSubscription``);
one that falls ``events_max_queue`` events behind is dropped with close code
``SLOW_CONSUMER_CLOSE_CODE``, so a slow reader costs the node a fixed amount
of memory and never holds back the runtime. The close comes at once, ahead of
the backlog (which is dropped), even while a send to a client that stopped
reading is stuck. Messages the client sends are
ignored; its close ends the subscription.

Every subscriber costs the event loop (the one consensus runs on) a send per
event, so their number is capped (``[api] max_event_subscribers``; above it the
upgrade is refused with 503 ``TOO_MANY_SUBSCRIBERS``), and each event is
encoded once and the text shared (``EventEncoder``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Final

from aiohttp import WSCloseCode, WSMsgType, web

from node.api.context import services_of, settings_of
from node.api.errors import ApiCode, ApiError
from node.api.params import check_known_params
from node.api.txs import status_view, stored_certificate_view
from node.api.views import Json
from node.services import (
    BlockCommitted,
    ChainEvent,
    EventSubscription,
    NodeServices,
    TxStatusChanged,
)

SLOW_CONSUMER_CLOSE_CODE: Final = 4008
"""Close code for a subscriber dropped because it fell behind (4000-4999: application)."""
HEARTBEAT_S: Final = 20.0
CLOSE_TIMEOUT_S: Final = 5.0
"""The longest a close waits on a client that stopped reading (the heartbeat took 30 s)."""
SUBSCRIBERS_RETRY_MS: Final = 5_000
"""A slot frees only when a subscriber leaves, which is rare: a client retrying
sooner would mostly be refused again."""
LOG = logging.getLogger("veil.api.events")


class LastCertificate:
    """An event stream's view of the certificate it encoded last, by height.

    Every tx of a block settles in turn, each ``tx_status`` carrying the block's
    certificate: kept here, it is read and decoded once per block instead of
    once per tx. A height's certificate never changes
    once committed."""

    def __init__(self, services: NodeServices) -> None:
        self._services = services
        self._height: int | None = None
        self._view: Json | None = None

    def at(self, height: int) -> Json | None:
        if height != self._height or self._view is None:
            self._view = stored_certificate_view(self._services, height)
            self._height = height
        return self._view


def event_message(
    event: ChainEvent, services: NodeServices, certificates: LastCertificate | None = None
) -> Json:
    if isinstance(event, BlockCommitted):
        return {
            "type": "block_committed",
            "height": event.height,
            "block_hash": event.block_hash.hex(),
            "state_root": event.state_root.hex(),
            "tx_ids": [tx_id.hex() for tx_id in event.tx_ids],
            "timestamp_ms": event.timestamp_ms,
        }
    if isinstance(event, TxStatusChanged):
        certificate_at = None if certificates is None else certificates.at
        return {"type": "tx_status"} | status_view(event.status, services, certificate_at)
    raise TypeError(f"not a chain event: {type(event).__name__}")


class EventEncoder:
    """Each event's JSON text, made once and shared by every subscriber.

    The hub hands every subscriber the same event object, so its text is kept by
    the object's id, with the object (so the id is not reused while kept), for
    the last ``capacity`` events encoded. A subscriber that has not overflowed
    is at most ``events_max_queue`` events behind the newest, so with that
    capacity it finds the text another subscriber made; a miss costs one more
    encode, never a wrong text."""

    def __init__(self, services: NodeServices, capacity: int) -> None:
        self._services = services
        self._capacity = capacity
        self._certificates = LastCertificate(services)
        self._texts: dict[int, tuple[ChainEvent, str]] = {}

    def text(self, event: ChainEvent) -> str:
        kept = self._texts.get(id(event))
        if kept is not None:
            return kept[1]
        text = json.dumps(event_message(event, self._services, self._certificates))
        self._texts[id(event)] = (event, text)
        if len(self._texts) > self._capacity:
            del self._texts[next(iter(self._texts))]  # the oldest: dicts keep insertion order
        return text

    def clear(self) -> None:
        self._texts.clear()


@dataclass(slots=True)
class EventFanout:
    """One app's open subscriptions and the encoder they share (``create_app`` makes it)."""

    encoder: EventEncoder
    subscribers: int = 0


FANOUT_KEY: Final = web.AppKey[EventFanout]("veil_events_fanout")


def event_fanout(services: NodeServices, events_max_queue: int) -> EventFanout:
    """A subscriber that has not overflowed is at most ``events_max_queue`` behind."""
    return EventFanout(EventEncoder(services, events_max_queue + 1))


async def _drain_client(socket: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends until it closes."""
    async for message in socket:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


async def events(request: web.Request) -> web.WebSocketResponse:
    check_known_params(request.query, frozenset())
    services = services_of(request)
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    if not socket.can_prepare(request).ok:
        raise ApiError(ApiCode.INVALID_PARAMETER, "/v1/events needs a WebSocket upgrade")
    settings = settings_of(request)
    max_queue, limit = settings.events_max_queue, settings.max_event_subscribers
    fanout = request.app[FANOUT_KEY]
    if fanout.subscribers >= limit:
        raise ApiError(
            ApiCode.TOO_MANY_SUBSCRIBERS,
            f"this node serves at most {limit} event subscribers, retry later",
            retry_after_ms=SUBSCRIBERS_RETRY_MS,
        )
    fanout.subscribers += 1
    try:
        # Subscribe before the handshake completes: the client sees every event after it.
        subscription = services.subscribe(max_queue)
        try:
            await socket.prepare(request)
        except BaseException:
            subscription.close()
            raise
        await _serve(socket, subscription, fanout.encoder)
    finally:
        fanout.subscribers -= 1
        if fanout.subscribers == 0:
            fanout.encoder.clear()  # no one left to share the texts with
    return socket


async def _serve(
    socket: web.WebSocketResponse, subscription: EventSubscription, encoder: EventEncoder
) -> None:
    reader = asyncio.create_task(_drain_client(socket))
    overflow = asyncio.create_task(subscription.wait_overflowed())
    sender = asyncio.create_task(_send_events(socket, subscription, encoder))
    try:
        await asyncio.wait({sender, reader, overflow}, return_when=asyncio.FIRST_COMPLETED)
        # A send stuck on a client that stopped reading gives way to the overflow it
        # causes; cancelled, it leaves a whole frame (aiohttp writes, then drains).
        await _stop(sender)
        if subscription.overflowed:
            await _close(socket, SLOW_CONSUMER_CLOSE_CODE, b"slow consumer")
    except ConnectionError:
        # The client reset the connection while we sent: its leaving, not our bug.
        LOG.debug("events subscriber went away mid-send", exc_info=True)
    finally:
        # Also on cancellation (aiohttp cancels the handler when the connection drops).
        subscription.close()
        for task in (sender, reader, overflow):
            task.cancel()
        await asyncio.gather(sender, reader, overflow, return_exceptions=True)
    await _close(socket, WSCloseCode.OK, b"")


async def _send_events(
    socket: web.WebSocketResponse, subscription: EventSubscription, encoder: EventEncoder
) -> None:
    """Send each event until the subscription ends. Neither taking a queued event nor a
    send to a client that keeps up suspends, so a wake-up sends all that is queued."""
    async for event in subscription:
        await socket.send_str(encoder.text(event))


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` if it still runs; raise what it raised."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error


async def _close(socket: web.WebSocketResponse, code: int, message: bytes) -> None:
    """Close, waiting at most ``CLOSE_TIMEOUT_S`` on a client that does not read: on
    the timeout aiohttp closes the transport, whose queued frames (the close frame
    last) still go out if the client reads again."""
    if socket.closed:
        return
    try:
        await asyncio.wait_for(socket.close(code=code, message=message), CLOSE_TIMEOUT_S)
    except TimeoutError:
        LOG.debug("events subscriber did not take its close in time", extra={"code": code})
