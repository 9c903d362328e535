"""A member that authenticates and hangs up at once is redialed with back-off.

Any authenticated dial used to reset the failure count, so such a peer was
redialed every ``reconnect_initial_ms``/2..``reconnect_initial_ms`` (50-100 ms
by default) forever: a TLS handshake, two ed25519 operations and two log lines
each. Now only a session that outlived a heartbeat interval resets it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets

from aiohttp import web

from node.peer_protocol import PLAIN_CHANNEL_BINDING, Authenticated, Connection, LocalPeer, Role
from node.transport import PeerTransport
from tests.integration.peer_net import CHAIN, IDENTITIES, VALIDATORS, free_ports, link_config

WATCH_S = 2.0


async def test_a_peer_that_hangs_up_right_after_the_handshake_is_redialed_with_back_off() -> None:
    ports = free_ports(4)
    sessions = 0

    async def hang_up_after_auth(request: web.Request) -> web.WebSocketResponse:
        """Validator 1: authenticates properly, then closes at once."""
        nonlocal sessions
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = Connection(
            LocalPeer(IDENTITIES[1], CHAIN, VALIDATORS, secrets.token_bytes(16)),
            role=Role.LISTENER,
            nonce=secrets.token_bytes(32),
            channel_binding=PLAIN_CHANNEL_BINDING,
            tls=False,
        )
        await ws.send_bytes(connection.start())
        async for message in ws:
            connection.receive_data(message.data)
            if out := connection.data_to_send():
                await ws.send_bytes(out)
            while (event := connection.next_event()) is not None:
                if isinstance(event, Authenticated):
                    sessions += 1
                    await ws.close()
                    return ws
        return ws

    app = web.Application()
    app.router.add_get("/veil/peer/v1", hang_up_after_auth)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ports[1]).start()
    config = dataclasses.replace(
        link_config(0, ports, None),
        peer_endpoints=("", f"127.0.0.1:{ports[1]}", "", ""),
        reconnect_initial_ms=100,  # the defaults
        reconnect_max_ms=5_000,
    )
    try:
        async with PeerTransport(config, IDENTITIES[0], CHAIN, VALIDATORS):
            await asyncio.sleep(WATCH_S)
    finally:
        await runner.cleanup()
    # After the n-th short session the loop sleeps at least 100 * 2**(n-1) ms, so
    # the 6th cannot start before 3.1 s; resetting after each made 20 or more.
    assert 1 <= sessions <= 6, f"{sessions} authenticated sessions in {WATCH_S} s"
