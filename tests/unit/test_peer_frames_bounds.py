"""Element-count bounds on frames, matched to what honest senders produce."""

from __future__ import annotations

import asyncio

import msgpack
import pytest

from ledger.tx import Tx
from node import peer_bridge
from node.peer_bridge import TransportLinks
from node.peer_frames import (
    DEFAULT_MAX_FRAME_BYTES,
    LENGTH_PREFIX_BYTES,
    MAX_TXS_PER_FRAME,
    Frame,
    FrameError,
    FrameKind,
    PeerFault,
    TxsFrame,
    decode_frame_body,
    encode_frame,
)
from tests.unit.test_peer_protocol import drain, established, faults

SMALLEST_TX = Tx(b"", b"", bytes(64), b"").encode()


def _decode(frame: TxsFrame) -> object:
    encoded = encode_frame(frame)
    return decode_frame_body(encoded[LENGTH_PREFIX_BYTES:], max_bytes=DEFAULT_MAX_FRAME_BYTES)


def test_a_txs_frame_at_the_bound_decodes_and_one_more_is_malformed() -> None:
    at_bound = TxsFrame((b"",) * MAX_TXS_PER_FRAME)
    assert _decode(at_bound) == at_bound
    with pytest.raises(FrameError) as caught:
        _decode(TxsFrame((b"",) * (MAX_TXS_PER_FRAME + 1)))
    assert caught.value.fault is PeerFault.MALFORMED_FRAME


def test_a_peer_sending_300k_empty_txs_in_one_frame_is_a_fault_not_300k_admissions() -> None:
    # Was: delivered whole (600 KB), each entry handed to admission with the loop blocked.
    pair = established()
    pair.listener.receive_data(encode_frame(TxsFrame((b"",) * 300_000)))
    events = drain(pair.listener)
    assert faults(events) == [PeerFault.MALFORMED_FRAME]
    assert len(events) == 1


def test_the_honest_gossip_cap_fits_the_bound() -> None:
    # Every gossiped tx was admitted, so it decodes as a Tx: at least this long.
    smallest = len(SMALLEST_TX)
    honest_most = (peer_bridge.GOSSIP_FRAME_BYTES - 1) // smallest + 1
    assert honest_most <= MAX_TXS_PER_FRAME


def test_a_frames_worth_of_the_smallest_txs_gossiped_in_one_turn_stays_within_the_bound() -> None:
    sent: list[Frame] = []

    class Recording:
        def broadcast(self, frame: Frame) -> None:
            sent.append(frame)

    count = 2 * (peer_bridge.GOSSIP_FRAME_BYTES // len(SMALLEST_TX) + 1)

    async def scenario() -> None:
        links = TransportLinks(Recording())  # type: ignore[arg-type]
        for _ in range(count):
            links.gossip_tx(SMALLEST_TX)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    sizes = [len(f.txs) if isinstance(f, TxsFrame) else 1 for f in sent]
    assert sum(sizes) == count
    assert max(sizes) <= MAX_TXS_PER_FRAME
    assert max(sizes) > MAX_TXS_PER_FRAME // 2  # the bound is not loose


def test_gossip_is_cut_at_the_count_bound_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Today 1 MiB of the smallest txs is under the count bound; gossip also cuts its
    frame at the count, so a smaller tx format could not break it."""
    sent: list[Frame] = []

    class Recording:
        def broadcast(self, frame: Frame) -> None:
            sent.append(frame)

    monkeypatch.setattr(peer_bridge, "MAX_TXS_PER_FRAME", 10)

    async def scenario() -> None:
        links = TransportLinks(Recording())  # type: ignore[arg-type]
        for _ in range(25):
            links.gossip_tx(SMALLEST_TX)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert [len(f.txs) if isinstance(f, TxsFrame) else 1 for f in sent] == [10, 10, 5]


def test_a_frame_holding_a_longer_array_than_any_frame_may_is_refused_at_decode() -> None:
    """Any kind: the count is checked by msgpack before the items exist, not by the
    frame's record after a 16 MiB array was built."""
    body = msgpack.packb([int(FrameKind.BLOCKS_REPLY), [1, 1, [b""] * (MAX_TXS_PER_FRAME + 1)]])
    with pytest.raises(FrameError) as caught:
        decode_frame_body(body, max_bytes=DEFAULT_MAX_FRAME_BYTES)
    assert caught.value.fault is PeerFault.MALFORMED_FRAME
    assert "TOO_MANY_ITEMS" in str(caught.value)
