"""Peer transports over real TLS sockets on 127.0.0.1.

The start-order test draws its order from a seed it prints; replay with
``VEIL_PEER_SEED=<seed> pytest tests/integration/test_peer_transport.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from node.peer_frames import ConsensusFrame, PeerFault, TxFrame
from node.peer_protocol import (
    PLAIN_CHANNEL_BINDING,
    Authenticated,
    Connection,
    LocalPeer,
    Role,
)
from node.tls import client_context, server_context
from node.transport import PeerTransport
from tests.integration.peer_net import (
    CHAIN,
    IDENTITIES,
    OTHER_CHAIN,
    OUTSIDER,
    VALIDATORS,
    Pki,
    free_ports,
    link_config,
    make_pki,
    until,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def transport(index: int, ports: list[int], pki: Pki | None) -> PeerTransport:
    tls = pki.nodes[index] if pki is not None else None
    return PeerTransport(link_config(index, ports, tls), IDENTITIES[index], CHAIN, VALIDATORS)


async def receive_n(t: PeerTransport, count: int) -> list[tuple[int, object]]:
    async with asyncio.timeout(15):
        return [await t.receive() for _ in range(count)]


async def test_four_transports_connect_in_any_start_order_and_exchange_frames(pki: Pki) -> None:
    seed = int(os.environ.get("VEIL_PEER_SEED", secrets.randbelow(1 << 32)))
    print(f"seed={seed}: VEIL_PEER_SEED={seed} pytest {__file__}")
    rng = random.Random(seed)
    ports = free_ports(4)
    transports = [transport(i, ports, pki) for i in range(4)]
    order = rng.sample(range(4), 4)
    try:
        for i in order:
            await transports[i].start()
            await asyncio.sleep(rng.uniform(0, 0.3))
        for t in transports:
            await until(lambda t=t: len(t.connected_peers()) == 3, f"{t.index} fully connected")
        for t in transports:
            t.broadcast(ConsensusFrame(f"from {t.index}".encode()))
        for t in transports:
            got = sorted(await receive_n(t, 3), key=lambda item: item[0])
            assert got == [
                (j, ConsensusFrame(f"from {j}".encode())) for j in range(4) if j != t.index
            ]
        # One session per pair once duplicates are resolved, on both ends alike.
        for t in transports:
            await until(lambda t=t: len(t._sessions) == 3, f"{t.index} one session per peer")
        assert all(
            f == {} or set(k for _, k in f) <= {PeerFault.CONNECTION_LOST}
            for f in (t.fault_counts() for t in transports)
        )
    finally:
        for t in transports:
            await t.stop()


async def test_a_killed_peer_reconnects_and_gets_what_was_queued_for_it(pki: Pki) -> None:
    ports = free_ports(4)
    transports = [transport(i, ports, pki) for i in range(4)]
    try:
        for t in transports:
            await t.start()
        for t in transports:
            await until(lambda t=t: len(t.connected_peers()) == 3, "connected")
        await transports[3].stop()
        await until(lambda: 3 not in transports[0].connected_peers(), "0 sees 3 gone")
        transports[0].send(3, TxFrame(b"sent while 3 was down"))
        transports[3] = transport(3, ports, pki)  # a new process: new boot id
        await transports[3].start()
        for t in transports:
            await until(lambda t=t: len(t.connected_peers()) == 3, f"{t.index} reconnected")
        assert await receive_n(transports[3], 1) == [(0, TxFrame(b"sent while 3 was down"))]
        transports[1].send(3, ConsensusFrame(b"after"))
        assert await receive_n(transports[3], 1) == [(1, ConsensusFrame(b"after"))]
    finally:
        for t in transports:
            await t.stop()


async def three_validators(pki: Pki, ports: list[int]) -> list[PeerTransport]:
    transports = [transport(i, ports, pki) for i in range(3)]
    for t in transports:
        await t.start()
    return transports


async def test_a_non_member_with_a_consortium_certificate_is_refused(pki: Pki) -> None:
    ports = free_ports(4)
    honest = await three_validators(pki, ports)
    # The outsider holds a CA-signed TLS certificate but no validator key.
    its_view = (*VALIDATORS[:3], OUTSIDER.public_key)
    outsider = PeerTransport(link_config(3, ports, pki.outsider), OUTSIDER, CHAIN, its_view)
    await outsider.start()
    try:
        await until(
            lambda: all(t.fault_counts().get((None, PeerFault.NOT_MEMBER), 0) >= 1 for t in honest),
            "every validator refused the outsider",
        )
        outsider.broadcast(ConsensusFrame(b"let me in"))
        await asyncio.sleep(0.3)
        assert outsider.connected_peers() == frozenset()
        assert all(3 not in t.connected_peers() and t._inbound.empty() for t in honest)
        assert any(kind is PeerFault.REFUSED_BY_PEER for _, kind in outsider.fault_counts())
    finally:
        for t in [*honest, outsider]:
            await t.stop()


async def test_a_member_with_a_wrong_chain_id_is_refused(pki: Pki) -> None:
    ports = free_ports(4)
    honest = await three_validators(pki, ports)
    stranger = PeerTransport(
        link_config(3, ports, pki.nodes[3]), IDENTITIES[3], OTHER_CHAIN, VALIDATORS
    )
    await stranger.start()
    try:
        await until(
            lambda: all(
                t.fault_counts().get((None, PeerFault.WRONG_CHAIN), 0) >= 1 for t in honest
            ),
            "every validator refused the other chain",
        )
        stranger.broadcast(ConsensusFrame(b"wrong chain"))
        await asyncio.sleep(0.3)
        assert stranger.connected_peers() == frozenset()
        assert all(3 not in t.connected_peers() and t._inbound.empty() for t in honest)
    finally:
        for t in [*honest, stranger]:
            await t.stop()


async def test_plain_and_tls_links_never_connect(pki: Pki) -> None:
    ports = free_ports(4)
    honest = await three_validators(pki, ports)
    plain = transport(3, ports, None)
    await plain.start()
    try:
        # TLS dialers fail their TLS handshake against the plain listener.
        await until(
            lambda: all(t.fault_counts().get((3, PeerFault.TLS_FAILED), 0) >= 1 for t in honest),
            "every TLS dialer failed against the plain node",
        )
        await asyncio.sleep(0.5)
        assert plain.connected_peers() == frozenset()
        assert all(3 not in t.connected_peers() for t in honest)
    finally:
        for t in [*honest, plain]:
            await t.stop()


def test_plain_links_need_the_explicit_option(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allow_plain"):
        link_config(0, free_ports(4), None, allow_plain=False)


async def test_a_relay_with_a_consortium_certificate_cannot_splice_two_validators(
    pki: Pki,
) -> None:
    """A man in the middle terminates TLS on both sides with its own valid
    certificate and forwards every WebSocket message unchanged: the two
    validators bind different certificate pairs, so neither signature verifies."""
    ports = free_ports(5)
    relay_port = ports[4]
    # Validator 0 believes validator 1 lives at the relay's port.
    zero = PeerTransport(
        dataclasses.replace(
            link_config(0, ports[:4], pki.nodes[0]),
            peer_endpoints=("", f"127.0.0.1:{relay_port}", "", ""),
        ),
        IDENTITIES[0],
        CHAIN,
        VALIDATORS,
    )
    one = PeerTransport(
        dataclasses.replace(link_config(1, ports[:4], pki.nodes[1]), peer_endpoints=("",) * 4),
        IDENTITIES[1],
        CHAIN,
        VALIDATORS,
    )
    spliced: list[int] = []

    async def splice(request: web.Request) -> web.WebSocketResponse:
        inner = web.WebSocketResponse()
        await inner.prepare(request)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                f"wss://127.0.0.1:{ports[1]}/veil/peer/v1", ssl=client_context(pki.outsider)
            ) as outer,
        ):
            spliced.append(1)

            async def pump(src: Any, dst: Any) -> None:
                async for message in src:
                    if message.type is aiohttp.WSMsgType.BINARY:
                        await dst.send_bytes(message.data)
                await dst.close()

            await asyncio.gather(pump(inner, outer), pump(outer, inner))
        return inner

    app = web.Application()
    app.router.add_get("/veil/peer/v1", splice)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(
        runner, "127.0.0.1", relay_port, ssl_context=server_context(pki.outsider)
    ).start()
    await one.start()
    await zero.start()
    try:
        await until(
            lambda: (
                zero.fault_counts().get((1, PeerFault.BAD_SIGNATURE), 0) >= 1
                and one.fault_counts().get((0, PeerFault.BAD_SIGNATURE), 0) >= 1
            ),
            "both ends refused the spliced session",
        )
        assert spliced, "the relay never carried a session"
        assert zero.connected_peers() == frozenset() and one.connected_peers() == frozenset()
    finally:
        await zero.stop()
        await one.stop()
        await runner.cleanup()


UPGRADE = (
    b"GET /veil/peer/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


async def test_silent_sockets_time_out_and_are_capped_while_handshaking() -> None:
    ports = free_ports(4)
    config = dataclasses.replace(
        link_config(0, ports, None), handshake_timeout_ms=1_000, max_pending_handshakes=1
    )
    async with PeerTransport(config, IDENTITIES[0], CHAIN, VALIDATORS) as victim:
        _, silent = await asyncio.open_connection("127.0.0.1", ports[0])
        silent.write(UPGRADE)  # then never says Hello
        await silent.drain()
        await until(lambda: victim._handshaking == 1, "the silent socket is handshaking")
        reader, second = await asyncio.open_connection("127.0.0.1", ports[0])
        second.write(UPGRADE)
        await second.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 503")
        assert victim.fault_counts() == {(None, PeerFault.TOO_MANY_HANDSHAKES): 1}
        await until(
            lambda: victim.fault_counts().get((None, PeerFault.HANDSHAKE_TIMEOUT)) == 1,
            "the silent socket timed out",
        )
        assert victim._handshaking == 0
        for writer in (silent, second):
            writer.close()


async def test_upgrades_arriving_while_one_is_prepared_are_capped_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cap was checked before ``prepare()`` and the slot taken after it: had
    prepare yielded, every upgrade arriving meanwhile passed the check."""
    prepare = web.WebSocketResponse.prepare

    async def slow_prepare(self: web.WebSocketResponse, request: web.BaseRequest) -> object:
        await asyncio.sleep(0.05)
        return await prepare(self, request)

    monkeypatch.setattr(web.WebSocketResponse, "prepare", slow_prepare)
    ports = free_ports(4)
    config = dataclasses.replace(
        link_config(0, ports, None), handshake_timeout_ms=2_000, max_pending_handshakes=1
    )
    async with PeerTransport(config, IDENTITIES[0], CHAIN, VALIDATORS) as victim:
        sockets = [await asyncio.open_connection("127.0.0.1", ports[0]) for _ in range(3)]
        for _, writer in sockets:
            writer.write(UPGRADE)  # all three before the first is prepared
        statuses = [await reader.readline() for reader, _ in sockets]
        assert sum(line.startswith(b"HTTP/1.1 101") for line in statuses) == 1
        assert sum(line.startswith(b"HTTP/1.1 503") for line in statuses) == 2
        assert victim.fault_counts()[(None, PeerFault.TOO_MANY_HANDSHAKES)] == 2
        for _, writer in sockets:
            writer.close()


async def test_a_port_in_use_fails_start_with_oserror() -> None:
    ports = free_ports(4)
    async with PeerTransport(link_config(0, ports, None), IDENTITIES[0], CHAIN, VALIDATORS):
        twin = PeerTransport(link_config(0, ports, None), IDENTITIES[0], CHAIN, VALIDATORS)
        with pytest.raises(OSError):
            await twin.start()
        await twin.stop()


async def test_a_peer_that_sends_hello_and_auth_in_one_message_still_gets_our_auth() -> None:
    """Driven by a hand-held sans-I/O dialer, so the two frames share a message."""
    ports = free_ports(4)
    async with PeerTransport(
        link_config(0, ports, None), IDENTITIES[0], CHAIN, VALIDATORS
    ) as victim:
        dialer = Connection(
            LocalPeer(IDENTITIES[1], CHAIN, VALIDATORS, bytes(16)),
            role=Role.DIALER,
            nonce=secrets.token_bytes(32),
            channel_binding=PLAIN_CHANNEL_BINDING,
            tls=False,
            expected_peer=0,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"ws://127.0.0.1:{ports[0]}/veil/peer/v1") as ws,
        ):
            hello = dialer.start()
            dialer.receive_data((await ws.receive(timeout=5)).data)  # the victim's Hello
            await ws.send_bytes(hello + dialer.data_to_send())  # our Hello and Auth at once
            dialer.receive_data((await ws.receive(timeout=5)).data)  # the victim's Auth
            assert isinstance(dialer.next_event(), Authenticated)
            await until(lambda: victim.connected_peers() == {1}, "the victim kept the session")


async def _connected_pair(pki: Pki) -> list[PeerTransport]:
    ports = free_ports(4)
    pair = [transport(i, ports, pki) for i in range(2)]
    for t in pair:
        await t.start()
    for t in pair:
        await until(lambda t=t: t.connected_peers() == {1 - t.index}, f"{t.index} connected")
    return pair


async def test_a_send_that_fails_closes_the_session_and_the_frame_goes_on_the_next(
    pki: Pki,
) -> None:
    """Before, a writer that raised left its session registered: it read on but never
    sent, so the peer got nothing more until the socket closed by itself."""
    pair = await _connected_pair(pki)
    try:
        session = pair[0]._links[1].session
        assert session is not None

        async def broken_send(data: bytes, compress: int | None = None) -> None:
            raise ConnectionResetError("injected")

        session.ws.send_bytes = broken_send  # type: ignore[method-assign]
        pair[0].send(1, ConsensusFrame(b"through the next session"))
        await until(lambda: pair[0]._links[1].session not in (None, session), "a new session")
        assert await receive_n(pair[1], 1) == [(0, ConsensusFrame(b"through the next session"))]
        assert pair[0].fault_counts().get((1, PeerFault.CONNECTION_LOST), 0) >= 1
    finally:
        for t in pair:
            await t.stop()


async def test_a_writer_that_breaks_is_logged_and_its_link_is_dialled_again(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    pair = await _connected_pair(pki)
    try:
        session = pair[0]._links[1].session
        assert session is not None

        def broken_encode(frame: object) -> bytes:
            raise RuntimeError("injected encoder bug")

        session.connection.send = broken_encode  # type: ignore[method-assign]
        pair[0].send(1, ConsensusFrame(b"lost with the broken writer"))
        await until(lambda: pair[0]._links[1].session not in (None, session), "a new session")
        pair[0].send(1, ConsensusFrame(b"after"))
        assert await receive_n(pair[1], 1) == [(0, ConsensusFrame(b"after"))]
        assert "the link's writer failed, closing the link: RuntimeError" in caplog.text
    finally:
        for t in pair:
            await t.stop()
