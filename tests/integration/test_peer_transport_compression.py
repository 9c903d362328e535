"""Peer links never use permessage-deflate, in either direction.

With aiohttp's default (``compress=True`` on the listener) a peer that had not
authenticated, here a holder of a consortium certificate that is not a
validator, sent ~16 KiB of deflate that the listener inflated to a 16 MiB
message and held, per handshake slot, before a single valid frame.
"""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from node import peer_protocol
from node.peer_frames import MAX_HANDSHAKE_FRAME_BYTES, PeerFault
from node.peer_protocol import ConnectionState
from node.tls import client_context
from node.transport import PeerTransport
from tests.integration.peer_net import (
    CHAIN,
    IDENTITIES,
    VALIDATORS,
    free_ports,
    link_config,
    make_pki,
    until,
)

INFLATED_BYTES = 16 << 20


async def test_the_listener_refuses_deflate_so_a_small_message_cannot_inflate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path)
    ports = free_ports(4)
    config = dataclasses.replace(
        link_config(0, ports, pki.nodes[0]), peer_endpoints=(f"127.0.0.1:{ports[0]}", "", "", "")
    )
    before_auth: list[int] = []
    original = peer_protocol.Connection.receive_data

    def recording(self: peer_protocol.Connection, data: bytes) -> None:
        if self.state is not ConnectionState.ESTABLISHED:
            before_auth.append(len(data))
        original(self, data)

    monkeypatch.setattr(peer_protocol.Connection, "receive_data", recording)
    message = bytes(INFLATED_BYTES)  # no Hello: zeros, a few KiB once deflated
    assert len(zlib.compress(message, 9)) < 32 << 10
    async with (
        PeerTransport(config, IDENTITIES[0], CHAIN, VALIDATORS) as victim,
        aiohttp.ClientSession() as session,
    ):
        ws = await session.ws_connect(
            f"wss://127.0.0.1:{ports[0]}/veil/peer/v1",
            ssl=client_context(pki.outsider),  # CA-signed, not a validator
            compress=15,
            max_msg_size=0,
        )
        assert ws.compress == 0, "the listener accepted permessage-deflate"
        await ws.receive(timeout=5)  # the victim's Hello
        # Deflated anyway (RSV1 set) though not negotiated: a protocol error.
        await ws.send_bytes(message, compress=15)
        await until(lambda: bool(victim.fault_counts()), "the victim faults the socket")
        await ws.close()
        assert victim.fault_counts() == {(None, PeerFault.CONNECTION_LOST): 1}
    assert all(size <= MAX_HANDSHAKE_FRAME_BYTES for size in before_auth), before_auth


async def test_the_dialer_does_not_offer_deflate() -> None:
    ports = free_ports(4)
    offered: list[str | None] = []

    async def listener(request: web.Request) -> web.WebSocketResponse:
        offered.append(request.headers.get("Sec-WebSocket-Extensions"))
        ws = web.WebSocketResponse()  # aiohttp's default would accept deflate
        await ws.prepare(request)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/veil/peer/v1", listener)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ports[1]).start()
    config = dataclasses.replace(
        link_config(0, ports, None), peer_endpoints=("", f"127.0.0.1:{ports[1]}", "", "")
    )
    try:
        async with PeerTransport(config, IDENTITIES[0], CHAIN, VALIDATORS):
            await until(lambda: len(offered) >= 1, "the transport dials")
    finally:
        await runner.cleanup()
    assert offered[0] is None
