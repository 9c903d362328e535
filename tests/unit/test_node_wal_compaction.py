"""WAL compaction in the runtime: the log stays bounded over a long run, and a
replica restored from the compacted log is the one restored from every record.

Four runtimes (tests/unit/test_node_runtime.py's cluster, checkpoints every 4
blocks) compact their WAL every ``COMPACT_RECORDS`` records while they commit
~80 blocks; a node is crashed after compacting and restarted from its
compacted log and store, and must catch up to the same chain. Each WAL also
journals every record ever appended (``JournalingWal``), so after the run a
replica rebuilt from the compacted log is compared with one rebuilt from the
full history.

Replay a failure with ``VEIL_NODE_SEED=<seed> pytest tests/unit/test_node_wal_compaction.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from consensus.persistence import Record
from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from node.proof_pool import inline_verifier
from node.runtime import NodeRuntime
from node.services import Accepted, Committed
from node.wal import WriteAheadLog
from tests.node_net import MemoryNetwork
from tests.sim.test_wal_compaction import protocol_state
from tests.unit.test_node_runtime import (
    NODES,
    Cluster,
    _attest,
    small_world,
    wall_clock_ms,
)

SEED = int(os.environ.get("VEIL_NODE_SEED", "31"))
COMPACT_RECORDS = 40
BLOCKS = 80


class JournalingWal(WriteAheadLog):
    """A real WAL that also keeps, in memory, every record ever appended to it."""

    def __init__(self, path: Path, journal: list[Record]) -> None:
        super().__init__(path)
        self.journal = journal
        self.largest = len(self)

    def append(self, records: Sequence[Record]) -> None:
        super().append(records)
        self.journal.extend(records)
        self.largest = max(self.largest, len(self))


class JournalingCluster(Cluster):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.journals: dict[int, list[Record]] = {i: [] for i in range(NODES)}
        self.wals: dict[int, JournalingWal] = {}

    def open_wal(self, index: int) -> WriteAheadLog:
        path = self.tmp_path / f"n{index}" / "wal"
        if not self.journals[index]:  # a restart: the history is what is on disk
            with WriteAheadLog(path) as on_disk:
                self.journals[index].extend(on_disk.records)
        wal = JournalingWal(path, self.journals[index])
        self.wals[index] = wal
        return wal


def rebuilt(cluster: Cluster, index: int, records: Sequence[Record]) -> object:
    """The protocol state of node ``index``'s replica restored from ``records``."""
    store = LevelDBStore(cluster.tmp_path / f"n{index}" / "chain", block_claims=stored_block_claim)
    try:
        open_chain(store, cluster.world.genesis)
        wal = ListLog(records)
        runtime = NodeRuntime(
            genesis=cluster.world.genesis,
            identity=cluster.identities[index],
            store=store,
            wal=wal,
            links=cluster.network.links(index, NODES),
            proof_verifier=inline_verifier,
            wall_clock_ms=wall_clock_ms,
        )
        return protocol_state(runtime.replica)
    finally:
        store.close()


class ListLog:
    """Records to restore from, and nothing else (the replica is only rebuilt)."""

    def __init__(self, records: Sequence[Record]) -> None:
        self._records = tuple(records)

    @property
    def records(self) -> tuple[Record, ...]:
        return self._records

    @property
    def latched(self) -> bool:
        return False

    def __len__(self) -> int:
        return len(self._records)

    def append(self, records: tuple[Record, ...]) -> None:
        raise AssertionError("a rebuilt replica never runs")

    def compact(self, live: Callable[[Sequence[Record]], Sequence[Record]]) -> int:
        raise AssertionError("a rebuilt replica never runs")


def test_the_wal_stays_bounded_and_restarts_from_its_compacted_form(tmp_path: Path) -> None:
    world = small_world()
    everyone = list(range(NODES))

    async def commit_attests(cluster: Cluster, nonces: range) -> None:
        for nonce in nonces:
            tx = _attest(world, nonce)
            node = cluster.runtimes[nonce % 3]
            assert await node.submit(tx.encode()) == Accepted(tx.tx_id), f"seed {SEED}"
            status = await node.wait_for_commit(tx.tx_id, 30)
            assert isinstance(status, Committed), f"seed {SEED}: {status}"

    async def scenario() -> None:
        cluster = JournalingCluster(tmp_path, world, MemoryNetwork(SEED, max_delay_ms=1.0))
        cluster.settings = dataclasses.replace(
            cluster.settings, wal_compact_records=COMPACT_RECORDS
        )
        for index in everyone:
            cluster.start(index)
        try:
            await commit_attests(cluster, range(1, BLOCKS // 2))
            await cluster.until("node 3 compacted", lambda: cluster.runtimes[3].wal_compactions > 0)
            await cluster.crash(3)
            await commit_attests(cluster, range(BLOCKS // 2, BLOCKS // 2 + 12))
            restarted = cluster.start(3)
            await commit_attests(cluster, range(BLOCKS // 2 + 12, BLOCKS))
            await cluster.until_one_height("node 3 at the others' height")
            assert restarted.wal_compactions > 0, f"seed {SEED}"
            cluster.assert_same_chain(everyone)
            compactions = {i: r.wal_compactions for i, r in cluster.runtimes.items()}
        finally:
            await cluster.stop_all()
        for index in everyone:
            journal = cluster.journals[index]
            wal = cluster.wals[index]
            assert compactions[index] >= 2, f"seed {SEED}: {compactions}"
            # Bounded: each compaction leaves the live set (votes above the stable
            # checkpoint, window 8), and the log grows COMPACT_RECORDS more at most,
            # plus one step's records; the journal keeps growing with the run.
            assert wal.largest <= 2 * COMPACT_RECORDS, f"seed {SEED}: {wal.largest}"
            assert len(journal) > 4 * COMPACT_RECORDS, f"seed {SEED}: {len(journal)}"
            with WriteAheadLog(tmp_path / f"n{index}" / "wal") as on_disk:
                compacted = on_disk.records
            assert len(compacted) < len(journal)
            assert rebuilt(cluster, index, compacted) == rebuilt(cluster, index, journal), (
                f"seed {SEED}: node {index} restores differently from its compacted log"
            )

    asyncio.run(scenario())
