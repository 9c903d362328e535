"""A node whose state diverged finds out in catch-up, and halts saying so.

Catch-up re-executes each fetched certified block; when the block it builds
differs from the certified one (``BlockMismatchError``), this node's state is
not the one the quorum executed on. It must stop with that reason (as for
``Diverged``), on both catch-up paths: the core's state transfer (a task of
its own, whose exception nobody awaited: the node went on, silently stuck)
and the start-up catch-up. The divergence is injected where it shows:
``LedgerApp.apply_certified`` of the lagging node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from node.app import BlockMismatchError
from node.catchup import VerifiedBlock
from node.runtime import NodeRuntime
from node.services import Accepted, Committed
from tests.node_net import MemoryNetwork
from tests.unit.test_node_runtime import NODES, Cluster, _attest, small_world

SEED = 41


def diverge(runtime: NodeRuntime) -> None:
    def apply_certified(block: VerifiedBlock, *, sync: bool = True) -> object:
        raise BlockMismatchError(f"height {block.height}: re-execution built another block")

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
            assert "diverged" in reason and "re-execution built another block" in reason
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
