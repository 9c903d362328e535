"""``GET /v1/events`` with many subscribers: their number is capped, each event is
encoded once for all of them, and a subscriber's futures and waits do not grow with
the number of events it is sent."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ledger.build import build_attest
from node.api import create_app, events
from node.api.errors import ApiCode
from node.services import Pending, TxStatusChanged
from tests.api.in_process_node import InProcessNode
from tests.spec.ledger_world import World

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def capped_app(node: InProcessNode, max_subscribers: int) -> web.Application:
    return create_app(node, max_event_subscribers=max_subscribers)


async def test_the_subscriber_past_the_limit_is_refused_before_the_handshake() -> None:
    world = World()
    node = InProcessNode(world, world.new_store())
    async with TestClient(TestServer(capped_app(node, 2))) as client:
        first = await client.ws_connect("/v1/events")
        second = await client.ws_connect("/v1/events")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/v1/events")
        assert refused.value.status == 503
        response = await client.get("/v1/events", headers=UPGRADE)
        body = await response.json()
        assert response.status == 503 and response.headers["Retry-After"] == "5"
        assert body == {
            "error": {
                "code": ApiCode.TOO_MANY_SUBSCRIBERS,
                "message": "this node serves at most 2 event subscribers, retry later",
                "retry_after_ms": events.SUBSCRIBERS_RETRY_MS,
            }
        }
        assert len(node.hub) == 2  # the refused ones never subscribed
        # The two still get every event.
        node.hub.publish(TxStatusChanged(Pending(b"\x01" * 32)))
        for socket in (first, second):
            assert (await socket.receive_json(timeout=5))["status"] == "pending"
        # A slot frees when a subscriber leaves.
        await first.close()
        third = await connect_once_a_slot_frees(client)
        assert len(node.hub) == 2
        await second.close()
        await third.close()


async def connect_once_a_slot_frees(client: TestClient) -> aiohttp.ClientWebSocketResponse:  # type: ignore[type-arg]
    """The slot frees once the leaver's handler has finished its close."""
    for _ in range(500):
        try:
            return await client.ws_connect("/v1/events")
        except aiohttp.WSServerHandshakeError as refused:
            assert refused.status == 503
            await asyncio.sleep(0.01)
    raise AssertionError("no slot freed after a subscriber left")


def counting(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every event ``node.api.events`` builds a message for."""
    built: list[object] = []
    build = events.event_message

    def counted(event: Any, *args: Any) -> Any:
        built.append(event)
        return build(event, *args)

    monkeypatch.setattr(events, "event_message", counted)
    return built


async def test_an_event_is_encoded_once_however_many_subscribers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five subscribers of 3 pending txs, their block and their 3 commits: 7 events
    built and encoded (it was 7 per subscriber), and every subscriber gets the same
    text."""
    built = counting(monkeypatch)
    world = World()
    node = InProcessNode(world, world.new_store())
    attests = [
        build_attest(world.bank_b.identity, world.chain_id, "kyc", bytes([n]) * 32, nonce=n)
        for n in (1, 2, 3)
    ]
    async with TestClient(TestServer(create_app(node))) as client:
        sockets = [await client.ws_connect("/v1/events") for _ in range(5)]
        for attest in attests:
            await node.submit(attest.encode())
        node.commit_pending()
        texts = [[await s.receive_str(timeout=5) for _ in range(7)] for s in sockets]
        for socket in sockets:
            await socket.close()
    assert len(built) == 7
    assert all(got == texts[0] for got in texts)
    messages = [json.loads(text) for text in texts[0]]
    assert [m.get("status", m["type"]) for m in messages] == ["pending"] * 3 + [
        "block_committed"
    ] + ["committed"] * 3
    assert messages[3]["tx_ids"] == [a.tx_id.hex() for a in attests]


class CountingAsyncio:
    """``asyncio`` as ``node.api.events`` sees it, counting the tasks, futures and waits
    it makes."""

    COUNTED = ("create_task", "ensure_future", "wait")

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        real = getattr(asyncio, name)
        if name not in self.COUNTED:
            return real

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return real(*args, **kwargs)

        return counted


async def handler_calls(
    monkeypatch: pytest.MonkeyPatch, publish: Callable[[InProcessNode], int]
) -> collections.Counter[str]:
    """The asyncio calls of one subscription that receives what ``publish`` sends at
    once (it returns how many events) and then closes."""
    counter = CountingAsyncio()
    world = World()
    node = InProcessNode(world, world.new_store())
    async with TestClient(TestServer(create_app(node))) as client:
        with monkeypatch.context() as patch:
            patch.setattr(events, "asyncio", counter)
            socket = await client.ws_connect("/v1/events")
            for _ in range(publish(node)):
                await socket.receive_str(timeout=5)
            await socket.close()
            for _ in range(500):  # the handler unsubscribes after its waits
                if len(node.hub) == 0:
                    break
                await asyncio.sleep(0.01)
    return counter.calls


def pending(count: int) -> Callable[[InProcessNode], int]:
    def publish(node: InProcessNode) -> int:
        for n in range(count):
            node.hub.publish(TxStatusChanged(Pending(n.to_bytes(32, "big"))))
        return count

    return publish


async def test_a_subscribers_futures_and_waits_do_not_grow_with_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler made two futures and two ``asyncio.wait`` per event; now what is
    queued goes out in one wake-up, and 100 events cost what one does."""
    one = await handler_calls(monkeypatch, pending(1))
    hundred = await handler_calls(monkeypatch, pending(100))
    assert one == hundred
    assert one["ensure_future"] == 0 and one["wait"] <= 2
