"""``GET /v1/events``: a WebSocket of committed blocks and tx status changes.

Each subscriber has a bounded queue (``node.services.EventSubscription``);
one that falls ``events_max_queue`` events behind is dropped with close code
``SLOW_CONSUMER_CLOSE_CODE``, so a slow reader costs the node a fixed amount
of memory and never holds back the runtime. The close comes at once, ahead of
the backlog (which is dropped), even while a send to a client that stopped
reading is stuck. Messages the client sends are
ignored; its close ends the subscription.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

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
LOG = logging.getLogger("veil.api.events")


class LastCertificate:
    """One subscriber's view of the certificate it sent last, by height.

    Every tx of a block settles in turn, each ``tx_status`` carrying the block's
    certificate: kept here, it is read and decoded once per block per
    subscriber instead of once per tx. A height's certificate never changes
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
    # Subscribe before the handshake completes: the client sees every event after it.
    subscription = services.subscribe(settings_of(request).events_max_queue)
    try:
        await socket.prepare(request)
    except BaseException:
        subscription.close()
        raise
    reader = asyncio.create_task(_drain_client(socket))
    overflow = asyncio.create_task(subscription.wait_overflowed())
    try:
        await _forward(socket, subscription, services, reader, overflow)
        if subscription.overflowed:
            await _close(socket, SLOW_CONSUMER_CLOSE_CODE, b"slow consumer")
    except ConnectionError:
        # The client reset the connection while we sent: its leaving, not our bug.
        LOG.debug("events subscriber went away mid-send", exc_info=True)
    finally:
        subscription.close()
        reader.cancel()
        overflow.cancel()
        await asyncio.gather(reader, overflow, return_exceptions=True)
    await _close(socket, WSCloseCode.OK, b"")
    return socket


async def _forward(
    socket: web.WebSocketResponse,
    subscription: EventSubscription,
    services: NodeServices,
    reader: asyncio.Task[None],
    overflow: asyncio.Task[None],
) -> None:
    """Send each event until the subscription ends or the client leaves. A send stuck
    on a client that stopped reading gives way to the overflow that causes."""
    stream = aiter(subscription)
    certificates = LastCertificate(services)
    next_event: asyncio.Future[ChainEvent] | None = None
    send: asyncio.Future[None] | None = None
    try:
        while not reader.done():
            next_event = asyncio.ensure_future(anext(stream))
            await asyncio.wait({next_event, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not next_event.done():  # the client went away first
                return
            try:
                event = next_event.result()
            except StopAsyncIteration:
                return
            message = event_message(event, services, certificates)
            send = asyncio.ensure_future(socket.send_json(message))
            await asyncio.wait({send, reader, overflow}, return_when=asyncio.FIRST_COMPLETED)
            if not send.done():  # stuck in drain; the frame is in the buffer, whole
                return
            send.result()
    finally:
        # Also on cancellation (aiohttp cancels the handler when the connection drops).
        for future in (next_event, send):
            if future is not None:
                _discard(future)


def _discard(future: asyncio.Future[Any]) -> None:
    """Cancel ``future`` if still running, and mark its outcome as seen: the client it
    was for is gone, and asyncio would log an unseen exception as an error."""
    future.cancel()
    future.add_done_callback(_seen)


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


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
