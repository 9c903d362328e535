"""Serving blocks to a catching-up peer: the range a peer asks for is clamped before
anything is read, the reads run on the reader thread, not the event loop nor the
worker thread that executes blocks, and one peer's requests take turns.

Before, ``NodeRuntime.blocks_for`` read and encoded every block from the asked
height up to the tip, on the loop, whatever ``last_height`` and ``max_bytes``
the peer sent; the writer trimmed the reply to one frame only afterwards. Then
the reads ran on the worker thread, where a peer keeping 64 requests unanswered
queued 64 reads ahead of every execution.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.store import StoreSnapshot
from node.catchup import CertifiedBlock
from node.peer_bridge import TransportLinks, pump
from node.peer_frames import DEFAULT_MAX_FRAME_BYTES, BlocksReply, BlocksRequest, Frame
from node.proof_pool import inline_verifier
from node.runtime import NodeRuntime, RuntimeSettings
from node.serial_worker import SerialWorker
from node.wal import WriteAheadLog
from tests.node_net import MemoryNetwork
from tests.node_world import validator_identities
from tests.spec.ledger_world import GENESIS_TIME_MS, World
from tests.unit.test_node_catchup import _chain
from tests.unit.test_peer_bridge_bounds import ReplicaLimits

U64_MAX = 2**64 - 1


class CountingReads:
    """A committed view that records which heights' blocks were read, and on which thread."""

    def __init__(self, view: StoreSnapshot) -> None:
        self._view = view
        self.heights: list[int] = []
        self.threads: set[str] = set()

    def block_at(self, height: int) -> bytes | None:
        self.heights.append(height)
        self.threads.add(threading.current_thread().name)
        return self._view.block_at(height)

    def __getattr__(self, name: str) -> object:
        return getattr(self._view, name)


@contextmanager
def runtime_on_a_chain(
    tmp_path: Path, world: World, heights: int, settings: RuntimeSettings
) -> Iterator[tuple[NodeRuntime, CountingReads]]:
    """A runtime (not running) over a chain of ``heights`` blocks, its committed view
    counting its block reads."""
    worker = SerialWorker()
    wal = WriteAheadLog(tmp_path / "wal")
    runtime = NodeRuntime(
        genesis=world.genesis,
        identity=validator_identities(world)[0],
        store=_chain(world, heights),
        wal=wal,
        links=MemoryNetwork(1).links(0, 4),
        proof_verifier=inline_verifier,
        wall_clock_ms=lambda: GENESIS_TIME_MS,
        settings=settings,
        worker=worker,
    )
    reads = CountingReads(runtime._committed)
    runtime._committed = reads  # type: ignore[assignment]
    try:
        yield runtime, reads
    finally:
        worker.close()
        wal.close()


def test_a_request_up_to_u64_max_reads_only_the_clamped_range_on_the_worker_thread(
    tmp_path: Path,
) -> None:
    world = World()
    with runtime_on_a_chain(tmp_path, world, 6, RuntimeSettings(serve_max_blocks=2)) as (
        runtime,
        reads,
    ):
        served = asyncio.run(runtime.blocks_for(2, U64_MAX, U64_MAX))
    assert [CertifiedBlock.decode(data).height for data in served] == [2, 3]
    assert reads.heights == [2, 3]  # before: 2 to 6, the tip
    assert reads.threads == {"veil-reader"}


def test_a_served_read_does_not_wait_for_the_execution_worker(tmp_path: Path) -> None:
    world = World()
    with runtime_on_a_chain(tmp_path, world, 3, RuntimeSettings()) as (runtime, reads):

        async def scenario() -> list[bytes]:
            release = threading.Event()
            busy = asyncio.ensure_future(runtime._worker.run(release.wait))
            try:
                return await asyncio.wait_for(runtime.blocks_for(1, 3, U64_MAX), 5)
            finally:
                release.set()
                await busy

        served = asyncio.run(scenario())
    assert [CertifiedBlock.decode(data).height for data in served] == [1, 2, 3]
    assert reads.threads == {"veil-reader"}


@dataclass
class ServingTransport:
    """One ``BlocksRequest`` in; the inbound stream stays open until it is answered."""

    request: BlocksRequest
    sent: list[tuple[int, Frame]]
    answered: asyncio.Event

    @dataclass(frozen=True)
    class Config:
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES

    config = Config()

    def send(self, peer: int, frame: Frame) -> None:
        self.sent.append((peer, frame))
        self.answered.set()

    def is_quarantined(self, peer: int) -> bool:
        return False  # these peers send nothing that quarantines

    def __aiter__(self) -> AsyncIterator[tuple[int, Frame]]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[tuple[int, Frame]]:
        yield 2, self.request
        await asyncio.wait_for(self.answered.wait(), 5)


class ServingRuntime:
    config = ReplicaLimits()  # the pump decodes with its counts

    def __init__(self) -> None:
        self.asked: list[tuple[int, int, int]] = []

    async def blocks_for(self, first_height: int, last_height: int, max_bytes: int) -> list[bytes]:
        self.asked.append((first_height, last_height, max_bytes))
        return [b"block"]


def test_the_pump_caps_a_requests_bytes_at_one_frame_and_answers_it_in_a_task() -> None:
    async def scenario() -> tuple[list[tuple[int, Frame]], ServingRuntime]:
        request = BlocksRequest(7, 5, U64_MAX, U64_MAX)
        transport = ServingTransport(request, [], asyncio.Event())
        runtime = ServingRuntime()
        links = TransportLinks(transport)  # type: ignore[arg-type]
        await pump(transport, links, runtime)  # type: ignore[arg-type]
        return transport.sent, runtime

    sent, runtime = asyncio.run(scenario())
    assert runtime.asked == [(5, U64_MAX, DEFAULT_MAX_FRAME_BYTES // 2)]
    assert sent == [(2, BlocksReply(7, 5, (b"block",)))]


class ManyRequestsTransport:
    """Five ``BlocksRequest``s from peer 2, then one from peer 3; open until all six
    are answered."""

    config = ServingTransport.Config()

    def __init__(self) -> None:
        self.sent: list[tuple[int, Frame]] = []
        self.all_answered = asyncio.Event()

    def send(self, peer: int, frame: Frame) -> None:
        self.sent.append((peer, frame))
        if len(self.sent) == 6:
            self.all_answered.set()

    def is_quarantined(self, peer: int) -> bool:
        return False

    def __aiter__(self) -> AsyncIterator[tuple[int, Frame]]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[tuple[int, Frame]]:
        for request_id in range(5):
            yield 2, BlocksRequest(request_id, 1, 64, U64_MAX)
        yield 3, BlocksRequest(9, 1, 64, U64_MAX)
        await asyncio.wait_for(self.all_answered.wait(), 5)


class GatedRuntime:
    """Holds every read until the test lets it go; notes how many run at once, per peer."""

    config = ReplicaLimits()  # the pump decodes with its counts

    def __init__(self) -> None:
        self.running: list[int] = []
        self.most_at_once = 0
        self.gate = asyncio.Event()

    async def blocks_for(self, first_height: int, last_height: int, max_bytes: int) -> list[bytes]:
        self.running.append(first_height)
        self.most_at_once = max(self.most_at_once, len(self.running))
        await self.gate.wait()
        self.running.remove(first_height)
        return [b"block"]


def test_one_peers_requests_take_turns_and_do_not_hold_up_another_peers() -> None:
    async def scenario() -> tuple[ManyRequestsTransport, GatedRuntime, int]:
        transport = ManyRequestsTransport()
        runtime = GatedRuntime()
        links = TransportLinks(transport)  # type: ignore[arg-type]
        task = asyncio.ensure_future(pump(transport, links, runtime))  # type: ignore[arg-type]
        for _ in range(20):
            await asyncio.sleep(0)
        # Peer 2's first request and peer 3's are read; peer 2's other four wait.
        reading_before_release = len(runtime.running)
        runtime.gate.set()
        await asyncio.wait_for(task, 5)
        return transport, runtime, reading_before_release

    transport, runtime, reading_before_release = asyncio.run(scenario())
    assert reading_before_release == 2
    assert runtime.most_at_once == 2
    replies = [(peer, frame) for peer, frame in transport.sent if isinstance(frame, BlocksReply)]
    assert [frame.request_id for peer, frame in replies if peer == 2] == [0, 1, 2, 3, 4]
    assert [peer for peer, _ in transport.sent].count(3) == 1
