"""Tx gossip: the txs a node admits within one turn of its event loop go to each peer
as one ``TxsFrame``; the receiving pump hands each to the runtime, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from node import peer_bridge
from node.peer_bridge import TransportLinks, pump
from node.peer_frames import (
    DEFAULT_MAX_FRAME_BYTES,
    LENGTH_PREFIX_BYTES,
    Frame,
    TxFrame,
    TxsFrame,
    decode_frame_body,
    encode_frame,
)
from tests.unit.test_peer_bridge_bounds import ReplicaLimits


class RecordingTransport:
    """What ``TransportLinks`` broadcasts, and a scripted inbound stream for ``pump``."""

    def __init__(self, inbound: list[tuple[int, Frame]] | None = None) -> None:
        self.sent: list[Frame] = []
        self._inbound = inbound or []

    def broadcast(self, frame: Frame) -> None:
        self.sent.append(frame)

    def is_quarantined(self, peer: int) -> bool:
        return False  # these peers send nothing that quarantines

    def __aiter__(self) -> AsyncIterator[tuple[int, Frame]]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[tuple[int, Frame]]:
        for item in self._inbound:
            yield item


class RecordingRuntime:
    config = ReplicaLimits()  # the pump decodes with its counts

    def __init__(self) -> None:
        self.txs: list[tuple[int, bytes]] = []

    def on_peer_tx(self, peer: int, tx_bytes: bytes) -> None:
        self.txs.append((peer, tx_bytes))

    def on_peer_txs(self, peer: int, txs: Sequence[bytes]) -> None:
        for tx_bytes in txs:  # as NodeRuntime, after its batch signature check
            self.on_peer_tx(peer, tx_bytes)


def test_txs_gossiped_in_one_loop_turn_leave_as_one_frame_and_a_lone_one_as_a_tx_frame() -> None:
    async def scenario() -> list[Frame]:
        transport = RecordingTransport()
        links = TransportLinks(transport)  # type: ignore[arg-type]
        for n in range(3):
            links.gossip_tx(bytes([n]) * 10)
        assert transport.sent == []  # nothing leaves before the turn ends
        await asyncio.sleep(0)
        links.gossip_tx(b"later")
        await asyncio.sleep(0)
        return transport.sent

    sent = asyncio.run(scenario())
    assert sent == [TxsFrame((b"\0" * 10, b"\1" * 10, b"\2" * 10)), TxFrame(b"later")]


def test_gossip_leaves_at_once_when_a_frames_worth_of_bytes_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(peer_bridge, "GOSSIP_FRAME_BYTES", 80)

    async def scenario() -> tuple[list[Frame], list[Frame]]:
        transport = RecordingTransport()
        links = TransportLinks(transport)  # type: ignore[arg-type]
        for n in range(5):
            links.gossip_tx(bytes([n]) * 40)
        within_the_turn = list(transport.sent)
        await asyncio.sleep(0)
        return within_the_turn, transport.sent

    within_the_turn, sent = asyncio.run(scenario())
    pairs = [TxsFrame((b"\0" * 40, b"\1" * 40)), TxsFrame((b"\2" * 40, b"\3" * 40))]
    assert within_the_turn == pairs
    assert sent == [*pairs, TxFrame(b"\4" * 40)]


def test_a_txs_frame_round_trips_and_the_pump_admits_each_tx_in_order() -> None:
    frame = TxsFrame((b"a" * 300, b"b" * 5, b"c"))
    encoded = encode_frame(frame)
    decoded = decode_frame_body(encoded[LENGTH_PREFIX_BYTES:], max_bytes=DEFAULT_MAX_FRAME_BYTES)
    assert decoded == frame
    runtime = RecordingRuntime()
    transport = RecordingTransport([(2, decoded), (1, TxFrame(b"d"))])
    links = TransportLinks(transport)  # type: ignore[arg-type]
    asyncio.run(pump(transport, links, runtime))  # type: ignore[arg-type]
    assert runtime.txs == [(2, b"a" * 300), (2, b"b" * 5), (2, b"c"), (1, b"d")]
