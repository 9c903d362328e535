"""A node whose state diverged finds out in catch-up, and halts saying so; a peer
that lies about a header does not halt it.

Catch-up re-executes each fetched certified block; when the block it builds
differs from the header a peer sent (``BlockMismatchError``), either that peer
lied (the certificate does not cover the header) or this node's state is not
the one the quorum executed on. One peer is a fault of that peer: the block is
fetched from another. f + 1 peers serving the same header show the node
diverged: it must stop with that reason (as for ``Diverged``), on both
catch-up paths: the core's state transfer (a task of its own, whose exception
nobody awaited: the node went on, silently stuck) and the start-up catch-up
(which the idle tip probe also runs). The divergence is injected where it
shows: ``LedgerApp.apply_certified`` of the lagging node; the lies in its
fetches.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

from node.app import BlockMismatchError
from node.catchup import VerifiedBlock
from node.runtime import NodeRuntime
from node.services import Accepted, Committed
from tests.node_net import MemoryNetwork
from tests.node_world import with_header_proposer
from tests.unit.test_node_runtime import NODES, Cluster, _attest, small_world

SEED = 41


def diverge(runtime: NodeRuntime) -> None:
    def apply_certified(block: VerifiedBlock, *, sync: bool = True) -> object:
        raise BlockMismatchError(block.height, b"\x0b" * 32, block.block_hash)

    runtime.app.apply_certified = apply_certified  # type: ignore[method-assign,assignment]


async def commit_attests(cluster: Cluster, nonces: range) -> None:
    for nonce in nonces:
        tx = _attest(cluster.world, nonce)
        assert await cluster.runtimes[0].submit(tx.encode()) == Accepted(tx.tx_id)
        status = await cluster.runtimes[0].wait_for_commit(tx.tx_id, 30)
        assert isinstance(status, Committed), f"seed {SEED}: {status}"


async def halted(cluster: Cluster, index: int, timeout_s: float = 30) -> str:
    runtime = cluster.runtimes[index]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while runtime.stop_reason is None:
        task = cluster.tasks[index]
        if task.done():
            task.result()  # raise what ended it
            raise AssertionError(f"node {index} ended without a stop reason")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"node {index} never halted (catch-up silently stuck?)")
        await asyncio.sleep(0.02)
    await asyncio.wait_for(cluster.tasks.pop(index), 10)  # run() returns after a halt
    return runtime.stop_reason


def test_a_state_transfer_that_diverges_halts_the_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        network = MemoryNetwork(SEED)
        cluster = Cluster(tmp_path, small_world(), network)
        for index in range(NODES):
            cluster.start(index)
        try:
            network.down.add(3)  # cut off, still running: the core's state transfer
            await commit_attests(cluster, range(1, 13))
            diverge(cluster.runtimes[3])
            network.down.discard(3)
            await commit_attests(cluster, range(13, 21))
            reason = await halted(cluster, 3)
            assert "diverged" in reason and "re-execution built block 0b0b" in reason
            assert cluster.runtimes[3].status().stopped
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


async def restart_behind_and_halt(cluster: Cluster, inject: Callable[[NodeRuntime], None]) -> str:
    """Node 3 crashed while 5 blocks committed, restarted with ``inject`` applied before
    its loop runs (so its start-up catch-up meets it first); the reason it halted."""
    await cluster.crash(3)
    await commit_attests(cluster, range(1, 6))
    restarted = cluster.start(3)
    inject(restarted)
    return await halted(cluster, 3)


def test_a_start_up_catch_up_that_diverges_halts_the_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEED)
        try:
            reason = await restart_behind_and_halt(cluster, diverge)
            assert "diverged" in reason, reason
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


MADE_UP_PROPOSER = b"\xee" * 32


def lie_about_headers(runtime: NodeRuntime, liars: set[int]) -> list[int]:
    """``runtime``'s fetches from ``liars`` come back with valid certificates under one
    made-up header each (the same lie from every liar); the heights they were asked
    for are returned."""
    links = runtime.links
    fetch_blocks = links.fetch_blocks
    asked: list[int] = []

    async def lying(peer: int, first_height: int, last_height: int, max_bytes: int) -> list[bytes]:
        blocks = await fetch_blocks(peer, first_height, last_height, max_bytes)
        if peer not in liars or not blocks:
            return blocks
        asked.append(first_height)
        return [with_header_proposer(data, MADE_UP_PROPOSER) for data in blocks]

    links.fetch_blocks = lying  # type: ignore[method-assign]
    return asked


def test_a_peer_that_lies_about_headers_at_start_up_is_a_fault_not_a_halt(
    tmp_path: Path,
) -> None:
    """Peer 0, asked first, serves made-up headers: the node halted "diverged in
    catch-up" before, for good. Now it counts the fault and takes the blocks from
    the others."""

    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEED)
        try:
            await cluster.crash(3)
            await commit_attests(cluster, range(1, 6))
            behind = cluster.runtimes[0].store.height()
            restarted = cluster.start(3)
            asked = lie_about_headers(restarted, {0})
            await cluster.until(
                "node 3 caught up", lambda: restarted.store.height() >= behind, timeout_s=30
            )
            assert not restarted.stopped, f"seed {SEED}: {restarted.stop_reason}"
            assert asked, f"seed {SEED}: the liar was never asked"
            assert restarted.fault_counts.get("catchup_header", 0) >= 1, f"seed {SEED}"
            await commit_attests(cluster, range(6, 8))
            await cluster.until_one_height()
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_peer_that_lies_about_headers_in_a_state_transfer_is_a_fault_not_a_halt(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        network = MemoryNetwork(SEED)
        cluster = Cluster(tmp_path, small_world(), network)
        cluster.settings = dataclasses.replace(cluster.settings, catchup_chunk_blocks=2)
        for index in range(NODES):
            cluster.start(index)
        try:
            partitioned = cluster.runtimes[3]
            await cluster.until(
                "node 3's start-up catch-up over", partitioned._startup_catchup_over.is_set
            )
            network.down.add(3)  # cut off, still running: the core's state transfer
            await commit_attests(cluster, range(1, 13))
            asked = lie_about_headers(partitioned, {1})
            network.down.discard(3)
            await commit_attests(cluster, range(13, 17))
            await cluster.until_one_height()
            await cluster.until("the core told", lambda: partitioned.state_transfers >= 1)
            assert not partitioned.stopped, f"seed {SEED}: {partitioned.stop_reason}"
            assert asked, f"seed {SEED}: the liar was never asked"
            assert partitioned.fault_counts.get("catchup_header", 0) >= 1, f"seed {SEED}"
            cluster.assert_same_chain(list(range(NODES)))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_f_plus_1_peers_serving_one_header_against_our_execution_halt_the_node(
    tmp_path: Path,
) -> None:
    """Peers 0 and 1 (f + 1 = 2 of 4) serve the same header that re-execution does not
    build: at least one of them is honest, so this node's state is the one that is
    wrong, and it must not go on from it."""

    async def scenario() -> None:
        def peers_0_and_1_agree_against_us(runtime: NodeRuntime) -> None:
            lie_about_headers(runtime, {0, 1})

        cluster = Cluster.started(tmp_path, SEED)
        try:
            reason = await restart_behind_and_halt(cluster, peers_0_and_1_agree_against_us)
            assert "diverged in catch-up: 2 peers served" in reason, reason
            # Peer 0 alone was a fault, and the block was asked of peer 1.
            assert cluster.runtimes[3].fault_counts.get("catchup_header") == 2, f"seed {SEED}"
            assert cluster.runtimes[3].store.height() == 0, f"seed {SEED}"
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())
