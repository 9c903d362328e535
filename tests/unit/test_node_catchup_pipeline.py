"""The catch-up pipeline (node/catchup_pipeline.py) on fakes: what overlaps, what ends it.

The runtime tests (tests/unit/test_node_runtime.py) run it on real stores and
certified blocks through both catch-up paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from ledger.identity import verify_self_tagged
from node.catchup import CatchUp, FetchRequest, PeerFailures, VerifiedBlock
from node.catchup_pipeline import PeerChunks, PlanChunks, run_pipelined
from tests.spec.ledger_world import World
from tests.unit.test_node_catchup import _chain, _served


def _chunk(first: int, count: int) -> list[VerifiedBlock]:
    """Stand-ins: the pipeline hands chunks over and never looks inside them."""
    return [cast(VerifiedBlock, ("block", h)) for h in range(first, first + count)]


def test_the_next_chunk_is_prepared_while_this_one_is_applied() -> None:
    async def scenario() -> list[str]:
        log: list[str] = []
        prepared = 0
        next_started = asyncio.Event()

        async def prepare() -> list[VerifiedBlock]:
            nonlocal prepared
            prepared += 1
            log.append(f"prepare {prepared}")
            next_started.set()
            await asyncio.sleep(0)
            return _chunk(prepared * 4 - 3, 4) if prepared <= 3 else []

        async def apply(blocks: Sequence[VerifiedBlock]) -> bool:
            number = (cast(Any, blocks[0])[1] + 3) // 4
            next_started.clear()
            log.append(f"apply {number} starts")
            # Unless the next chunk is being prepared meanwhile, this times out.
            await asyncio.wait_for(next_started.wait(), 1.0)
            log.append(f"apply {number} ends")
            return True

        await run_pipelined(prepare, apply, lambda: False)
        return log

    log = asyncio.run(scenario())
    assert log == [
        "prepare 1",
        "apply 1 starts",
        "prepare 2",
        "apply 1 ends",
        "apply 2 starts",
        "prepare 3",
        "apply 2 ends",
        "apply 3 starts",
        "prepare 4",
        "apply 3 ends",
    ]


def test_a_refused_chunk_or_a_stop_ends_the_pipeline_and_cancels_the_chunk_ahead() -> None:
    async def run(refuse_at: int, stop_after: int) -> tuple[list[int], bool]:
        applied: list[int] = []
        ahead_cancelled = False
        calls = 0

        async def prepare() -> list[VerifiedBlock]:
            nonlocal calls, ahead_cancelled
            calls += 1
            if calls > 2:
                try:
                    await asyncio.sleep(10)  # a slow fetch, still running at the end
                except asyncio.CancelledError:
                    ahead_cancelled = True
                    raise
            return _chunk(calls, 1)

        async def apply(blocks: Sequence[VerifiedBlock]) -> bool:
            applied.append(cast(Any, blocks[0])[1])
            await asyncio.sleep(0.01)
            return applied[-1] != refuse_at

        await run_pipelined(prepare, apply, lambda: len(applied) >= stop_after)
        await asyncio.sleep(0)  # let the cancellation land
        return applied, ahead_cancelled

    assert asyncio.run(run(refuse_at=2, stop_after=99)) == ([1, 2], True)
    assert asyncio.run(run(refuse_at=99, stop_after=2)) == ([1, 2], True)


def test_a_plan_whose_every_peer_sends_junk_stalls_with_their_faults_kept() -> None:
    world = World()
    plan = CatchUp(
        applied_height=0,
        target_height=8,
        target_state_root=b"\x00" * 32,
        peers=(1, 2),
        genesis=world.genesis,
        verify=verify_self_tagged,
        chunk_blocks=4,
        max_parallel=2,
    )
    asked: list[FetchRequest] = []

    async def fetch(request: FetchRequest) -> list[bytes] | str:
        asked.append(request)
        return [b"junk"]

    chunks = PlanChunks(plan, fetch, lambda: False)
    assert asyncio.run(chunks.next_chunk()) == []
    assert chunks.stalled
    assert sorted(r.peer for r in asked) == [1, 2]
    assert sorted(peer for peer, _ in plan.faults) == [1, 2]


def test_peer_chunks_ask_the_next_peer_and_count_a_bad_block_as_its_fault() -> None:
    world = World()
    faults: list[tuple[int, str]] = []
    asked: list[int] = []

    async def fetch(request: FetchRequest) -> list[bytes] | str:
        asked.append(request.peer)
        replies: dict[int, list[bytes] | str] = {
            1: "fetch failed: TimeoutError",
            2: [],
            3: [b"junk"],
        }
        return replies[request.peer]

    chunks = PeerChunks(
        5,
        lambda: [1, 2, 3],
        fetch,
        world.genesis,
        verify_self_tagged,
        lambda peer, detail: faults.append((peer, detail)),
        chunk_blocks=4,
        max_bytes=1 << 20,
    )
    assert asyncio.run(chunks.next_chunk()) == []
    assert asked == [1, 2, 3]
    assert [peer for peer, _ in faults] == [3]
    assert chunks.next_height == 5


def _peer_chunks_asking(
    replies: dict[int, list[bytes] | str], failures: PeerFailures, asked: list[int]
) -> PeerChunks:
    async def fetch(request: FetchRequest) -> list[bytes] | str:
        asked.append(request.peer)
        return replies[request.peer]

    return PeerChunks(
        5,
        lambda: [1, 2, 3],
        fetch,
        World().genesis,
        verify_self_tagged,
        lambda peer, detail: None,
        chunk_blocks=4,
        max_bytes=1 << 20,
        failures=failures,
    )


def test_peer_chunks_ask_a_peer_that_failed_last_and_not_once_f_plus_1_sound_have_none() -> None:
    # Peer 1 timed out before (a mute peer costs the fetch timeout each time).
    timeout = "fetch failed: TimeoutError"
    failures = PeerFailures()
    failures.failed(1)
    asked: list[int] = []
    chunks = _peer_chunks_asking({1: timeout, 2: [], 3: []}, failures, asked)
    assert asyncio.run(chunks.next_chunk()) == []
    assert asked == [2, 3]  # f + 1 = 2 of them have no block 5: peer 1 not asked
    # When the sound peers fail too, the one that failed least is still asked.
    asked.clear()
    chunks = _peer_chunks_asking({1: timeout, 2: timeout, 3: timeout}, failures, asked)
    assert asyncio.run(chunks.next_chunk()) == []
    assert asked == [2, 3, 1]
    assert failures.counts == {1: 2, 2: 1, 3: 1}
    assert failures.ranked([1, 2, 3]) == [2, 3, 1]
    failures.answered(1)
    assert failures.ranked([3, 1, 2]) == [1, 3, 2]  # equals keep their order


def test_one_sound_peer_saying_it_has_nothing_does_not_hide_the_peers_that_once_failed() -> None:
    """A byzantine peer with no failure marks that always says "nothing newer" kept
    every peer that had once timed out from being asked, for good: a mark clears
    only on a useful reply. Each idle probe then fetched nothing."""
    world = World()
    store = _chain(world, 4)
    failures = PeerFailures()
    failures.failed(2)  # one transient timeout each: a partition, a restart
    failures.failed(3)
    asked: list[int] = []

    async def fetch(request: FetchRequest) -> list[bytes] | str:
        asked.append(request.peer)
        if request.peer == 1:
            return []
        return _served(store, request.first_height, min(request.last_height, store.height()))

    chunks = PeerChunks(
        1,
        lambda: [1, 2, 3],
        fetch,
        world.genesis,
        verify_self_tagged,
        lambda peer, detail: None,
        chunk_blocks=4,
        max_bytes=1 << 20,
        failures=failures,
    )
    blocks = asyncio.run(chunks.next_chunk())
    assert [block.height for block in blocks] == [1, 2, 3, 4]
    assert asked == [1, 2]  # peer 1 alone is not f + 1 = 2 sound peers
    assert failures.counts == {3: 1}  # peer 2's useful reply cleared its mark


def test_peer_chunks_take_turns_so_a_peer_dripping_one_block_serves_one_chunk_in_three() -> None:
    """A byzantine peer answering each request with one valid block (as a peer at
    its tip would) was asked first for every chunk: one block per round trip."""
    world = World()
    store = _chain(world, 12)
    asked: list[int] = []

    async def fetch(request: FetchRequest) -> list[bytes] | str:
        asked.append(request.peer)
        last = request.first_height if request.peer == 1 else request.last_height
        return _served(store, request.first_height, min(last, store.height()))

    chunks = PeerChunks(
        1,
        lambda: [1, 2, 3],
        fetch,
        world.genesis,
        verify_self_tagged,
        lambda peer, detail: None,
        chunk_blocks=4,
        max_bytes=1 << 20,
    )

    async def three_chunks() -> list[int]:
        return [len(await chunks.next_chunk()) for _ in range(3)]

    assert asyncio.run(three_chunks()) == [1, 4, 4]
    assert asked == [1, 2, 3]
    assert chunks.next_height == 10
