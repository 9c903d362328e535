"""``GET /v1/events``: committed blocks and tx status changes; a slow subscriber is dropped."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from ledger.build import build_attest
from node.api import create_app
from node.api.events import SLOW_CONSUMER_CLOSE_CODE
from node.api.txs import status_view
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
