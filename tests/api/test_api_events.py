"""``GET /v1/events``: committed blocks and tx status changes; a slow subscriber is dropped."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import socket as sockets

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient, TestServer

from ledger.build import build_attest
from node.api import create_app, events
from node.api.events import SLOW_CONSUMER_CLOSE_CODE
from node.api.txs import status_view
from node.services import BlockCommitted
from tests.api.in_process_node import CertificateCountingNode, InProcessNode
from tests.spec.ledger_world import World


async def test_a_subscriber_sees_pending_then_block_then_committed() -> None:
    world = World()
    node = InProcessNode(world, world.new_store())
    attest = build_attest(world.bank_b.identity, world.chain_id, "kyc", b"\x05" * 32, nonce=1)
    async with TestClient(TestServer(create_app(node))) as client:
        socket = await client.ws_connect("/v1/events")
        await node.submit(attest.encode())
        node.commit_pending()
        pending = await socket.receive_json(timeout=5)
        block = await socket.receive_json(timeout=5)
        committed = await socket.receive_json(timeout=5)
        await socket.close()
    tx_id = attest.tx_id.hex()
    assert pending == {"type": "tx_status", "id": tx_id, "status": "pending"}
    assert block["type"] == "block_committed" and block["height"] == 1
    assert block["tx_ids"] == [tx_id]
    assert committed["type"] == "tx_status" and committed["status"] == "committed"
    assert committed["height"] == 1 and committed["certificate"]["seq"] == 1


async def test_a_slow_subscriber_is_closed_with_its_code() -> None:
    world = World()
    node = InProcessNode(world, world.new_store())
    async with TestClient(TestServer(create_app(node, events_max_queue=2))) as client:
        socket = await client.ws_connect("/v1/events")
        # Three events arrive before the handler can send any: the queue of 2 overflows.
        for _ in range(3):
            node.commit_pending()
        messages = []
        while True:
            message = await socket.receive(timeout=5)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
            messages.append(message.json())
        assert socket.close_code == SLOW_CONSUMER_CLOSE_CODE
    assert len(messages) <= 2
    assert len(node.hub) == 0


async def test_a_slow_subscriber_gets_its_close_before_any_of_its_backlog() -> None:
    """The overflow drops the backlog: the close is next, not the events it fell behind on."""
    world = World()
    node = InProcessNode(world, world.new_store())
    async with TestClient(TestServer(create_app(node, events_max_queue=2))) as client:
        socket = await client.ws_connect("/v1/events")
        for _ in range(3):  # all queued before the handler runs: the third overflows
            node.commit_pending()
        message = await socket.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        assert socket.close_code == SLOW_CONSUMER_CLOSE_CODE


def events_transports(app: web.Application) -> list[asyncio.Transport]:
    """The server side of each ``/v1/events`` connection, its send buffer clamped so
    a client that stops reading stalls the server's sends after a few KiB."""
    transports: list[asyncio.Transport] = []

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if request.path == "/v1/events" and request.transport is not None:
            raw = request.transport.get_extra_info("socket")
            raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_SNDBUF, 4096)
            transports.append(request.transport)

    app.on_response_prepare.append(on_prepare)
    return transports


async def connect_without_reading(
    server: BaseTestServer,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then reads nothing."""
    raw = sockets.socket()
    raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (server.host, server.port))
    reader, writer = await asyncio.open_connection(sock=raw, limit=1024)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        "GET /v1/events HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked frame a server sent."""
    frames, at = [], 0
    while at < len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length in (126, 127):
            width = 2 if length == 126 else 8
            length = int.from_bytes(data[at : at + width], "big")
            at += width
        frames.append((opcode, data[at : at + length]))
        at += length
    return frames


async def until(condition: object, timeout_s: float) -> bool:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_a_reader_that_stopped_reading_is_closed_at_once_with_its_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler is stuck sending to a client that reads nothing when that client
    overflows: it closes with 4008 within the close timeout (it waited for the
    heartbeat, ~30 s, and then closed with 1006), and the close frame follows the
    message that was in flight, without the backlog."""
    monkeypatch.setattr(events, "CLOSE_TIMEOUT_S", 0.2, raising=False)
    world = World()
    node = InProcessNode(world, world.new_store())
    app = create_app(node, events_max_queue=2)
    transports = events_transports(app)
    async with TestServer(app) as server:
        reader, writer = await connect_without_reading(server)
        assert await until(lambda: len(node.hub) == 1 and transports, 5)
        tx_ids = tuple(n.to_bytes(32, "big") for n in range(20_000))  # a 1.3 MB message
        node.hub.publish(BlockCommitted(1, b"\x01" * 32, b"\x02" * 32, tx_ids, 1))
        transport = transports[0]
        assert await until(lambda: transport.get_write_buffer_size() > 1 << 16, 5)  # stuck
        for height in (2, 3, 4):  # the third overflows the queue of 2
            node.hub.publish(BlockCommitted(height, b"\x01" * 32, b"\x02" * 32, (), height))
        assert await until(transport.is_closing, 3)
        data = await asyncio.wait_for(reader.read(), 10)  # the client reads again
        writer.close()
    frames = server_frames(data)
    assert [opcode for opcode, _ in frames] == [0x1, 0x8]
    assert int.from_bytes(frames[1][1][:2], "big") == SLOW_CONSUMER_CLOSE_CODE


@pytest.mark.parametrize("seen_as", ["the send raises", "the connection drops"])
async def test_a_client_that_resets_mid_send_ends_quietly(
    seen_as: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A client resets the connection while an event is sent to it. The handler sees
    it either as the send's ConnectionResetError (aiohttp's when the transport is
    closing) or as its own cancellation (when aiohttp sees the connection drop
    first). Either way the subscription ends with at most a debug line: no
    "internal error" traceback, and no send task whose error goes unseen."""
    world = World()
    node = InProcessNode(world, world.new_store())
    app = create_app(node)
    transports = events_transports(app)
    send_str = web.WebSocketResponse.send_str

    async def reset_then_send(
        self: web.WebSocketResponse, data: str, compress: int | None = None
    ) -> None:
        if seen_as == "the send raises":
            raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")
        transports[0].abort()  # what the client's RST does to the server's side
        await send_str(self, data, compress)

    monkeypatch.setattr(web.WebSocketResponse, "send_str", reset_then_send)
    with caplog.at_level(logging.DEBUG):
        async with TestClient(TestServer(app)) as client:
            socket = await client.ws_connect("/v1/events")
            node.commit_pending()
            message = await socket.receive(timeout=5)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert await until(lambda: len(node.hub) == 0, 5)
            await asyncio.sleep(0.05)  # the handler's last callbacks
        gc.collect()  # an unseen task exception is logged when the task is collected
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    if seen_as == "the send raises":
        messages = [r.getMessage() for r in caplog.records if r.name.startswith("veil")]
        assert "events subscriber went away mid-send" in messages


async def test_a_client_that_leaves_is_unsubscribed() -> None:
    world = World()
    node = InProcessNode(world, world.new_store())
    async with TestClient(TestServer(create_app(node))) as client:
        socket = await client.ws_connect("/v1/events")
        assert len(node.hub) == 1
        await socket.close()
        for _ in range(100):
            if len(node.hub) == 0:
                break
            await asyncio.sleep(0.01)
    assert len(node.hub) == 0


async def test_a_blocks_tx_statuses_share_one_certificate_read_per_subscriber() -> None:
    """Each committed tx's event carries its block's certificate; a subscriber reads and
    decodes it once per block (it did once per tx), and the events are unchanged."""
    world = World()
    node = CertificateCountingNode(world, world.new_store())
    attests = [
        build_attest(world.bank_b.identity, world.chain_id, "kyc", bytes([n]) * 32, nonce=n)
        for n in (1, 2, 3)
    ]
    async with TestClient(TestServer(create_app(node))) as client:
        socket = await client.ws_connect("/v1/events")
        for attest in attests:
            await node.submit(attest.encode())
        node.commit_pending()
        messages = [await socket.receive_json(timeout=5) for _ in range(7)]
        await socket.close()
    committed = [m for m in messages if m.get("status") == "committed"]
    assert [m["id"] for m in committed] == [a.tx_id.hex() for a in attests]
    assert node.certificate_reads == 1
    for message, attest in zip(committed, attests, strict=True):
        status = node.tx_status(attest.tx_id)
        assert message == {"type": "tx_status"} | status_view(status, node)
    assert committed[0]["certificate"]["seq"] == 1
