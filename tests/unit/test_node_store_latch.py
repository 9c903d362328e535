"""A store latched by a failed write halts the node from whichever task writes next.

The core's executions and the catch-up both write the store, one job at a time on
the worker thread. When one of them fails on a full disk the store latches, and the
other may already be queued behind it: that one meets the latch, not the disk. It
used to raise a bare ``StoreError`` that neither caught, which escaped ``run()`` as a
traceback instead of a clean halt (the chaos disk scenario in CI, seed 13). The
latch is injected the way a catch-up's failed fsync leaves it: ``Store.sync``
failing once on the node's own store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from ledger.leveldb_store import LevelDBStore
from ledger.store import StoreIOError, StoreLatchedError
from node.runtime import NodeRuntime
from node.services import Accepted
from tests.unit.test_node_catchup_divergence import (
    SEED,
    commit_attests,
    halted,
    restart_behind_and_halt,
)
from tests.unit.test_node_runtime import Cluster, _attest


def latch_store(runtime: NodeRuntime) -> None:
    """Fail one write of ``runtime``'s own store (the one its worker thread writes) on
    a full disk, then give the disk back: the store stays latched."""
    store = runtime.app.store
    assert isinstance(store, LevelDBStore)
    backend = store.backend
    write = backend.write

    def full_disk(batch: Sequence[tuple[bytes, bytes | None]], *, sync: bool = True) -> None:
        raise StoreIOError("writing a batch: IO error: No space left on device")

    backend.write = full_disk  # type: ignore[method-assign]
    with pytest.raises(StoreIOError, match="No space left"):
        store.sync()
    backend.write = write  # type: ignore[method-assign]
    with pytest.raises(StoreLatchedError):
        store.sync()


async def close_halted(cluster: Cluster, index: int) -> None:
    """``halted`` took the node's task; close its files as a crash would."""
    cluster.tasks[index] = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    await cluster.crash(index)


def test_an_execution_on_a_store_latched_by_another_write_halts_the_node(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEED)
        try:
            await commit_attests(cluster, range(1, 3))
            latch_store(cluster.runtimes[3])
            tx = _attest(cluster.world, 3)
            assert await cluster.runtimes[0].submit(tx.encode()) == Accepted(tx.tx_id)
            reason = await halted(cluster, 3)
            assert reason.startswith("store write failed at seq"), reason
            assert "earlier block write failed" in reason, reason
            await close_halted(cluster, 3)
            # The other three go on without it (f = 1).
            await commit_attests(cluster, range(4, 6))
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_a_catch_up_on_a_store_latched_by_another_write_halts_the_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster.started(tmp_path, SEED)
        try:
            reason = await restart_behind_and_halt(cluster, latch_store)
            assert reason.startswith("store write failed at height"), reason
            await close_halted(cluster, 3)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())
