"""What one peer can make the inbound pump do is bounded.

* Block serving: the protocol bounds unanswered requests per *connection* (64),
  so a member that reconnected got 64 fresh slots each time while its old
  sessions' serving tasks still waited their turn on the per-peer lock:
  tasks and store reads without bound. Now a peer has at most
  ``SERVES_PER_PEER`` being served; more are dropped and counted.
* A ``TxsFrame`` was admitted in one synchronous loop: a frame of many txs held
  the event loop (consensus, other peers, the API) for its whole admission.
  Now the pump yields every ``TXS_PER_TURN`` txs, keeping their order.
* A consensus payload that did not decode was counted and the next one read,
  so a member could keep a validator decoding junk. Now it quarantines the
  member, and what it sent before is dropped unread.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence

from consensus.messages import ForwardedRequests, Request
from consensus.wire import encode_message
from node.peer_bridge import SERVES_PER_PEER, TXS_PER_TURN, TransportLinks, pump
from node.peer_frames import (
    BatchRequest,
    BlocksReply,
    BlocksRequest,
    ConsensusFrame,
    Frame,
    TxsFrame,
)
from node.peer_protocol import MAX_PENDING_REQUESTS

RECONNECTS = 20


class Config:
    max_frame_bytes = 16 << 20


class Transport:
    """Frames pushed by the test; ``drained()`` returns once the pump took them all."""

    config = Config()

    def __init__(self) -> None:
        self._frames: asyncio.Queue[tuple[int, Frame] | asyncio.Event] = asyncio.Queue()
        self.sent: list[tuple[int, Frame]] = []
        self.quarantined: list[tuple[int, str]] = []

    def quarantine(self, peer: int, reason: str) -> None:
        self.quarantined.append((peer, reason))

    def is_quarantined(self, peer: int) -> bool:
        return any(p == peer for p, _ in self.quarantined)

    def push(self, peer: int, frame: Frame) -> None:
        self._frames.put_nowait((peer, frame))

    async def drained(self) -> None:
        """The generator reaches the barrier only when the pump asks for the frame
        after every earlier one, so all of those were handled."""
        barrier = asyncio.Event()
        self._frames.put_nowait(barrier)
        await asyncio.wait_for(barrier.wait(), 5)

    def __aiter__(self) -> AsyncIterator[tuple[int, Frame]]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[tuple[int, Frame]]:
        while True:
            item = await self._frames.get()
            if isinstance(item, asyncio.Event):
                item.set()
            else:
                yield item

    def send(self, peer: int, frame: Frame) -> None:
        self.sent.append((peer, frame))


class ReplicaLimits:
    """The parts of ``ReplicaConfig`` that bound a message's arrays."""

    max_batch_size = 8
    replica_count = 4
    watermark_window = 16


class Runtime:
    """The parts of ``NodeRuntime`` the pump calls; block reads wait for ``release``."""

    config = ReplicaLimits()

    def __init__(self, log: list[object] | None = None) -> None:
        self.release = asyncio.Event()
        self.reads = 0
        self.faults: Counter[tuple[str, int]] = Counter()
        self.log: list[object] = log if log is not None else []

    async def blocks_for(self, first: int, last: int, max_bytes: int) -> list[bytes]:
        self.reads += 1
        await self.release.wait()  # a long read on the reader thread
        return []

    def count_fault(self, kind: str, peer: int, detail: str) -> None:
        self.faults[(kind, peer)] += 1

    def on_peer_tx(self, peer: int, tx_bytes: bytes) -> None:
        self.log.append(tx_bytes)

    def on_peer_txs(self, peer: int, txs: Sequence[bytes]) -> None:
        for tx_bytes in txs:  # as NodeRuntime, after its batch signature check
            self.on_peer_tx(peer, tx_bytes)

    def on_peer_message(self, peer: int, message: object) -> None:
        self.log.append(message)


def request(n: int) -> BlocksRequest:
    return BlocksRequest(request_id=n, first_height=1 + n, last_height=1 + n, max_bytes=1 << 20)


async def sent(transport: Transport, count: int) -> None:
    for _ in range(100 * count):
        if len(transport.sent) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(transport.sent)} replies sent, not {count}")


def test_a_peer_that_reconnects_cannot_queue_more_serves_than_the_bound() -> None:
    async def scenario() -> None:
        transport = Transport()
        runtime = Runtime()
        links = TransportLinks(transport)  # type: ignore[arg-type]
        baseline = len(asyncio.all_tasks())
        task = asyncio.create_task(pump(transport, links, runtime))  # type: ignore[arg-type]
        # What the protocol lets through: 64 unanswered per session, RECONNECTS sessions.
        for session in range(RECONNECTS):
            for n in range(MAX_PENDING_REQUESTS):
                transport.push(1, request(session * MAX_PENDING_REQUESTS + n))
        transport.push(2, request(0))  # another peer has its own bound
        await transport.drained()
        serving = len(asyncio.all_tasks()) - baseline - 1  # less the pump
        assert serving == SERVES_PER_PEER + 1
        over = RECONNECTS * MAX_PENDING_REQUESTS - SERVES_PER_PEER
        assert runtime.faults == {("too_many_block_requests", 1): over}
        assert runtime.reads == 2  # one turn per peer: the reads run one at a time

        runtime.release.set()
        await sent(transport, SERVES_PER_PEER + 1)
        assert Counter(peer for peer, _ in transport.sent) == {1: SERVES_PER_PEER, 2: 1}
        assert all(isinstance(frame, BlocksReply) for _, frame in transport.sent)
        # The bound counts serves not yet done: the peer may ask again.
        transport.push(1, request(10_000))
        await transport.drained()
        await sent(transport, SERVES_PER_PEER + 2)
        assert runtime.faults == {("too_many_block_requests", 1): over}
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())


def test_a_txs_frame_is_admitted_in_order_with_the_loop_free_between_chunks() -> None:
    count = 4 * TXS_PER_TURN + 10
    txs = tuple(n.to_bytes(4, "big") for n in range(count))

    async def scenario() -> list[object]:
        log: list[object] = []
        transport = Transport()
        runtime = Runtime(log)
        links = TransportLinks(transport)  # type: ignore[arg-type]
        stop = False

        async def other_task() -> None:
            while not stop:
                log.append("other")
                await asyncio.sleep(0)

        other = asyncio.create_task(other_task())
        task = asyncio.create_task(pump(transport, links, runtime))  # type: ignore[arg-type]
        transport.push(1, TxsFrame(txs))
        await transport.drained()
        stop = True
        await other
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return log

    log = asyncio.run(scenario())
    assert [entry for entry in log if entry != "other"] == list(txs)
    runs: list[int] = [0]
    for entry in log:
        if entry == "other":
            runs.append(0)
        else:
            runs[-1] += 1
    # Another task ran between every chunk of TXS_PER_TURN; the old loop ran them all.
    assert max(runs) == TXS_PER_TURN
    assert sorted(run for run in runs if run) == [10] + [TXS_PER_TURN] * 4


def test_a_consensus_message_over_the_honest_counts_is_a_fault_not_decoded() -> None:
    """Bytes alone let a 16 MiB relay carry 2.7 M requests (seconds of decoding);
    the pump decodes with the replica's counts (``consensus.bounds.wire_limits``)."""

    def relay(requests: int) -> ConsensusFrame:
        batch = tuple(Request(bytes([n % 256]) * 32, b"x") for n in range(requests))
        return ConsensusFrame(encode_message(ForwardedRequests(0, batch, 1, bytes(64))))

    async def scenario() -> Runtime:
        transport = Transport()
        runtime = Runtime()
        links = TransportLinks(transport)  # type: ignore[arg-type]
        task = asyncio.create_task(pump(transport, links, runtime))  # type: ignore[arg-type]
        transport.push(1, relay(ReplicaLimits.max_batch_size))
        transport.push(1, relay(ReplicaLimits.max_batch_size + 1))
        await transport.drained()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return runtime

    runtime = asyncio.run(scenario())
    [delivered] = runtime.log
    assert isinstance(delivered, ForwardedRequests)
    assert len(delivered.requests) == ReplicaLimits.max_batch_size
    assert runtime.faults == {("undecodable_message", 1): 1}


def test_junk_from_a_member_quarantines_it_and_its_queued_frames_go_unread() -> None:
    good = ConsensusFrame(encode_message(ForwardedRequests(0, (), 1, bytes(64))))

    async def scenario() -> tuple[Transport, Runtime]:
        transport = Transport()
        runtime = Runtime()
        links = TransportLinks(transport)  # type: ignore[arg-type]
        task = asyncio.create_task(pump(transport, links, runtime))  # type: ignore[arg-type]
        transport.push(1, ConsensusFrame(b"\xc1 not msgpack"))
        for _ in range(5):  # already queued behind the junk: 16 MiB each, at worst
            transport.push(1, ConsensusFrame(b"\xc1 more junk"))
        transport.push(1, TxsFrame((b"tx",)))
        transport.push(2, good)  # another member is unaffected
        transport.push(3, BatchRequest(request_id=1, digest=bytes(32)))
        await transport.drained()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return transport, runtime

    transport, runtime = asyncio.run(scenario())
    assert transport.quarantined == [(1, "undecodable_message"), (3, "unsupported_frame")]
    assert runtime.faults == {("undecodable_message", 1): 1, ("unsupported_frame", 3): 1}
    assert len(runtime.log) == 1 and isinstance(runtime.log[0], ForwardedRequests)


def test_a_txs_frame_stops_at_the_chunk_after_its_sender_is_quarantined() -> None:
    """A frame of 16,384 bad-signature txs cost about half a second; once the first
    ones got the sender quarantined, the rest of the frame is not admitted."""
    txs = tuple(n.to_bytes(4, "big") for n in range(3 * TXS_PER_TURN))

    async def scenario() -> Runtime:
        transport = Transport()
        runtime = Runtime()

        def refuse(peer: int, tx_bytes: bytes) -> None:
            runtime.log.append(tx_bytes)
            transport.quarantine(peer, "invalid_gossip BAD_SIGNATURE")  # as the runtime does

        runtime.on_peer_tx = refuse  # type: ignore[method-assign]
        links = TransportLinks(transport)  # type: ignore[arg-type]
        task = asyncio.create_task(pump(transport, links, runtime))  # type: ignore[arg-type]
        transport.push(1, TxsFrame(txs))
        await transport.drained()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return runtime

    assert asyncio.run(scenario()).log == list(txs[:TXS_PER_TURN])
