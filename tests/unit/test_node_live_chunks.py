"""LiveChunks (node/catchup_pipeline.py) on fake peers serving real certified blocks.

The core's state transfer plans to the newest stable checkpoint, plans again
to each newer one the core learns meanwhile, goes on past the last one to
the newest height the peers hold, and keeps every peer's fault. The runtime
tests (tests/unit/test_node_runtime.py) run it end to end on real stores.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from consensus.actions import Execute
from consensus.messages import ProposalMetadata
from ledger.build import build_attest
from ledger.identity import verify_self_tagged
from ledger.proof_cache import ProofCache
from node.app import LedgerApp
from node.catchup import CatchUp, FetchRequest, VerifiedBlock, certified_block_at
from node.catchup_pipeline import Fetch, LiveChunks, PeerChunks
from tests.node_world import batch_of, certificate_for
from tests.spec.ledger_world import GENESIS_TIME_MS, World

CHUNK_BLOCKS = 2
PLAN_PARALLEL = 2
# Distinct reply bounds tell a plan's requests from the onward ones.
PLAN_REQUEST_BYTES = 1 << 20
ONWARD_REQUEST_BYTES = 3 << 20
JUNK_PROBLEM = "undecodable certified block"
REFUSAL = "fetch failed: TimeoutError"


@functools.cache
def _world_and_chain() -> tuple[World, tuple[bytes, ...]]:
    """A world and the certified blocks of a 20-block chain, as peers serve them."""
    world = World()
    store = world.new_store()
    app = LedgerApp(store, world.genesis, ProofCache())
    for seq in range(1, 21):
        attest = build_attest(
            world.bank_b.identity, world.chain_id, "d", seq.to_bytes(32, "big"), nonce=seq
        )
        batch = batch_of(world, [attest.encode()])
        metadata = ProposalMetadata(GENESIS_TIME_MS + seq, 0)
        app.execute(Execute(seq, batch, metadata, certificate_for(world, batch, metadata, seq)))
    served = []
    for height in range(1, 21):
        block = certified_block_at(store, height)
        assert block is not None
        served.append(block.encode())
    return world, tuple(served)


def _root(height: int) -> bytes:
    """LiveChunks only carries a checkpoint's root (the runtime checks it)."""
    return height.to_bytes(32, "big")


@dataclass
class _Peers:
    """Fake peers: each holds the chain up to a height, or sends junk, or refuses."""

    holds: dict[int, int]
    junk: frozenset[int] = frozenset()
    refuses: frozenset[int] = frozenset()
    asked: list[FetchRequest] = field(default_factory=list)

    async def fetch(self, request: FetchRequest) -> list[bytes] | str:
        self.asked.append(request)
        await asyncio.sleep(0)  # the reply arrives later, as over a link
        if request.peer in self.refuses:
            return REFUSAL
        if request.peer in self.junk:
            return [b"junk"]
        _, served = _world_and_chain()
        top = min(request.last_height, self.holds.get(request.peer, 0))
        return list(served[request.first_height - 1 : top])

    def plan_requests(self) -> list[FetchRequest]:
        return [r for r in self.asked if r.max_bytes == PLAN_REQUEST_BYTES]

    def onward_requests(self) -> list[FetchRequest]:
        return [r for r in self.asked if r.max_bytes == ONWARD_REQUEST_BYTES]


@dataclass
class _Core:
    """The core's newest stable checkpoint, which the test moves on as the core would."""

    checkpoint: tuple[int, bytes]

    def newest(self) -> tuple[int, bytes]:
        return self.checkpoint


def _live(
    peers: Sequence[int],
    fetch: Fetch,
    core: _Core,
    handed_out: int = 0,
    onward_faults: list[tuple[int, str]] | None = None,
) -> LiveChunks:
    world, _ = _world_and_chain()
    peer_tuple = tuple(peers)
    faults = onward_faults if onward_faults is not None else []

    def new_plan(applied: int, target: int, root: bytes) -> CatchUp:
        return CatchUp(
            applied_height=applied,
            target_height=target,
            target_state_root=root,
            peers=peer_tuple,
            genesis=world.genesis,
            verify=verify_self_tagged,
            chunk_blocks=CHUNK_BLOCKS,
            max_parallel=PLAN_PARALLEL,
            max_bytes_in_flight=PLAN_REQUEST_BYTES * PLAN_PARALLEL,
        )

    onward = PeerChunks(
        handed_out + 1,
        lambda: peer_tuple,
        fetch,
        world.genesis,
        verify_self_tagged,
        lambda peer, detail: faults.append((peer, detail)),
        chunk_blocks=CHUNK_BLOCKS,
        max_bytes=ONWARD_REQUEST_BYTES,
    )
    return LiveChunks(
        handed_out=handed_out,
        newest_checkpoint=core.newest,
        new_plan=new_plan,
        fetch=fetch,
        stopped=lambda: False,
        onward=onward,
    )


def _drain(
    chunks: LiveChunks, after_chunk: Callable[[list[VerifiedBlock]], None] = lambda _: None
) -> list[list[int]]:
    """The heights of each chunk handed out until an empty one (bounded: a LiveChunks
    that never ends fails here instead of hanging)."""

    async def scenario() -> list[list[int]]:
        handed: list[list[int]] = []
        for _ in range(40):
            blocks = await chunks.next_chunk()
            if not blocks:
                return handed
            handed.append([b.height for b in blocks])
            after_chunk(blocks)
        raise AssertionError(f"no end after {len(handed)} chunks: {handed}")

    return asyncio.run(scenario())


def _flat(chunks: list[list[int]]) -> list[int]:
    return [height for chunk in chunks for height in chunk]


def test_it_plans_again_to_a_newer_checkpoint_learnt_mid_transfer_then_goes_onward() -> None:
    peers = _Peers(holds={1: 18, 2: 18})
    core = _Core((8, _root(8)))
    chunks = _live((1, 2), peers.fetch, core)
    learnt_at: list[int] = []

    def core_learns(blocks: list[VerifiedBlock]) -> None:
        height = blocks[-1].height
        if not learnt_at:  # while the plan to 8 is still under way
            learnt_at.append(height)
            core.checkpoint = (16, _root(16))
        elif height >= 16 and core.checkpoint[0] == 16:
            # Less than a chunk ahead: onward asks for the same blocks, no new plan.
            core.checkpoint = (17, _root(17))

    handed = _drain(chunks, core_learns)
    assert learnt_at[0] < 8
    assert _flat(handed) == list(range(1, 19))
    assert chunks.checkpoints == [(8, _root(8)), (16, _root(16))]
    # Heights 1..16 came from the two plans (in parallel, both peers), the rest onward.
    planned = sorted(
        h for r in peers.plan_requests() for h in range(r.first_height, r.last_height + 1)
    )
    assert planned == list(range(1, 17))
    assert {r.peer for r in peers.plan_requests() if r.first_height > 8} == {1, 2}
    assert min(r.first_height for r in peers.onward_requests()) == 17
    assert chunks.handed_out == 18
    assert chunks.all_faults() == []


def test_it_ends_at_the_newest_height_the_peers_hold() -> None:
    peers = _Peers(holds={1: 8, 2: 8})
    chunks = _live((1, 2), peers.fetch, _Core((8, _root(8))))
    assert _flat(_drain(chunks)) == list(range(1, 9))
    # The last call asked each peer once for block 9 and nobody had it.
    assert [(r.peer, r.first_height) for r in peers.onward_requests()] == [(1, 9), (2, 9)]
    # Asked again, it still has nothing and plans nothing more.
    assert asyncio.run(chunks.next_chunk()) == []
    assert chunks.checkpoints == [(8, _root(8))]
    assert chunks.handed_out == 8
    assert not chunks.stalled
    assert chunks.all_faults() == []


def test_junk_and_refusals_are_faults_across_plans_and_other_peers_are_asked() -> None:
    peers = _Peers(holds={3: 10}, junk=frozenset({1}), refuses=frozenset({2}))
    core = _Core((4, _root(4)))
    onward_faults: list[tuple[int, str]] = []
    chunks = _live((1, 2, 3), peers.fetch, core, onward_faults=onward_faults)

    def core_learns(blocks: list[VerifiedBlock]) -> None:
        if blocks[-1].height >= 4:
            core.checkpoint = (8, _root(8))

    handed = _drain(chunks, core_learns)
    # Only peer 3 serves blocks: every height reached was asked again of it.
    assert _flat(handed) == list(range(1, 11))
    assert chunks.checkpoints == [(4, _root(4)), (8, _root(8))]
    faults = chunks.all_faults()
    # Each plan asked junk peer 1 once (then excluded it) and kept its fault,
    # the first plan's too once the second replaced it.
    junk_requests = [r for r in peers.plan_requests() if r.peer == 1]
    assert [r.first_height <= 4 for r in junk_requests] == [True, False]
    assert [detail.startswith(JUNK_PROBLEM) for peer, detail in faults if peer == 1] == [True, True]
    # Refusals are not exclusions: each plan request to peer 2 is one fault.
    refused_requests = [r for r in peers.plan_requests() if r.peer == 2]
    assert refused_requests
    assert [detail for peer, detail in faults if peer == 2] == [REFUSAL] * len(refused_requests)
    assert {peer for peer, _ in faults} == {1, 2}
    # Onward, the first chunk is asked of peer 1 (junk, a fault), 2 (refuses), then 3;
    # the next of peer 3 first (it alone has not failed). Its "nothing newer" is one
    # sound peer's word, not f + 1 (a byzantine one would hide the others for good),
    # so the two that failed are asked too, least failed first.
    onward = [(r.peer, r.first_height) for r in peers.onward_requests()]
    assert onward == [(1, 9), (2, 9), (3, 9), (3, 11), (2, 11), (1, 11)]
    assert [peer for peer, _ in onward_faults] == [1, 1]


def test_a_plan_whose_every_peer_sends_junk_stalls_and_does_not_go_onward() -> None:
    peers = _Peers(holds={}, junk=frozenset({1, 2}))
    chunks = _live((1, 2), peers.fetch, _Core((8, _root(8))))
    assert _drain(chunks) == []
    assert chunks.stalled
    assert sorted(peer for peer, _ in chunks.all_faults()) == [1, 2]
    # Asked again (as a pipeline would not, but a caller might), it stays stalled.
    assert asyncio.run(chunks.next_chunk()) == []
    assert peers.onward_requests() == []
    assert chunks.handed_out == 0


def test_close_cancels_the_requests_in_flight_and_keeps_their_plans_faults() -> None:
    """The runtime's order: the pipeline is cancelled (node shutdown), then ``close``."""
    cancelled: list[int] = []
    in_flight: list[FetchRequest] = []
    refused_once: set[int] = set()
    never = asyncio.Event()

    async def fetch(request: FetchRequest) -> list[bytes] | str:
        if request.peer == 1 and not refused_once:
            refused_once.add(1)
            return REFUSAL
        in_flight.append(request)
        try:
            await never.wait()  # a peer that never answers
        except asyncio.CancelledError:
            cancelled.append(request.peer)
            raise
        return []

    async def scenario() -> tuple[LiveChunks, set[asyncio.Task[object]]]:
        chunks = _live((1, 2), fetch, _Core((8, _root(8))))
        chunk_ahead = asyncio.ensure_future(chunks.next_chunk())
        for _ in range(20):
            if len(in_flight) == PLAN_PARALLEL:
                break
            await asyncio.sleep(0)
        # Peer 1's refused range went to peer 2, which had not failed.
        assert [r.peer for r in in_flight] == [2, 2]
        # As run_pipelined's ``finally`` and then the runtime's do, with no await between.
        chunk_ahead.cancel()
        chunks.close()
        with pytest.raises(asyncio.CancelledError):
            await chunk_ahead
        for _ in range(5):  # let the cancellations land
            await asyncio.sleep(0)
        running = asyncio.all_tasks() - {asyncio.current_task()}
        return chunks, {t for t in running if not t.done()}

    chunks, running = asyncio.run(scenario())
    assert running == set()
    assert sorted(cancelled) == [2, 2]
    assert chunks.planned is None
    assert chunks.all_faults() == [(1, REFUSAL)]
    chunks.close()  # twice is harmless: the faults are not counted again
    assert chunks.all_faults() == [(1, REFUSAL)]


def test_close_while_a_chunk_waits_ends_that_chunk_empty_and_asks_nobody_again() -> None:
    """``close`` without cancelling the waiting ``next_chunk`` first: that call used to
    raise ``KeyError`` (its answered futures were gone from the in-flight map)."""
    asked: list[FetchRequest] = []
    never = asyncio.Event()

    async def fetch(request: FetchRequest) -> list[bytes] | str:
        asked.append(request)
        await never.wait()
        return []

    async def scenario() -> list[VerifiedBlock]:
        chunks = _live((1, 2), fetch, _Core((8, _root(8))))
        waiting = asyncio.ensure_future(chunks.next_chunk())
        for _ in range(20):
            if len(asked) == PLAN_PARALLEL:
                break
            await asyncio.sleep(0)
        chunks.close()
        return await waiting

    assert asyncio.run(scenario()) == []
    assert len(asked) == PLAN_PARALLEL


def test_nothing_to_do_asks_each_peer_once_and_plans_nothing() -> None:
    # The core's checkpoint is the node's height, or older: already applied.
    for checkpoint in (8, 4):
        peers = _Peers(holds={1: 8, 2: 8})
        chunks = _live((1, 2), peers.fetch, _Core((checkpoint, _root(checkpoint))), handed_out=8)
        assert _drain(chunks) == [], checkpoint
        assert [(r.peer, r.first_height) for r in peers.asked] == [(1, 9), (2, 9)], checkpoint
        assert chunks.checkpoints == [], checkpoint
        assert chunks.planned is None
        assert chunks.all_faults() == []


def test_with_no_peer_nothing_is_asked_and_a_needed_plan_is_a_clear_error() -> None:
    peers = _Peers(holds={})
    chunks = _live((), peers.fetch, _Core((8, _root(8))), handed_out=8)
    assert _drain(chunks) == []
    assert peers.asked == []
    behind = _live((), peers.fetch, _Core((8, _root(8))), handed_out=0)
    with pytest.raises(ValueError, match="at least one peer"):
        _drain(behind)
    assert peers.asked == []
