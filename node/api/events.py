"""``GET /v1/events``: a WebSocket of committed blocks and tx status changes.

Each subscriber has a bounded queue (``node.services.EventSubscription``);
one that falls ``events_max_queue`` events behind is dropped with close code
``SLOW_CONSUMER_CLOSE_CODE``, so a slow reader costs the node a fixed amount
of memory and never holds back the runtime. Messages the client sends are
ignored; its close ends the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from aiohttp import WSMsgType, web

from node.api.context import services_of, settings_of
from node.api.errors import ApiCode, ApiError
from node.api.params import check_known_params
from node.api.txs import status_view, stored_certificate_view
from node.api.views import Json
from node.services import BlockCommitted, ChainEvent, NodeServices, TxStatusChanged

SLOW_CONSUMER_CLOSE_CODE: Final = 4008
"""Close code for a subscriber dropped because it fell behind (4000-4999: application)."""
HEARTBEAT_S: Final = 20.0


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
    stream = aiter(subscription)
    certificates = LastCertificate(services)
    try:
        while True:
            next_event = asyncio.ensure_future(anext(stream))
            done, _ = await asyncio.wait({next_event, reader}, return_when=asyncio.FIRST_COMPLETED)
            if next_event not in done:  # the client went away first
                next_event.cancel()
                break
            try:
                event = next_event.result()
            except StopAsyncIteration:
                break
            await socket.send_json(event_message(event, services, certificates))
        if subscription.overflowed and not socket.closed:
            await socket.close(code=SLOW_CONSUMER_CLOSE_CODE, message=b"slow consumer")
    finally:
        subscription.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    if not socket.closed:
        await socket.close()
    return socket
