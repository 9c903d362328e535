"""The runtime's executor: records are synced before the sends they guard, and a WAL
write failure stops the node before anything is sent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from consensus.messages import Message, PrePrepare
from consensus.persistence import Record
from ledger.build import build_attest
from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from node.proof_pool import inline_verifier
from node.runtime import NodeRuntime, RuntimeSettings, SerialWorker
from node.services import Accepted, Busy
from node.wal import WalLatchedError, WriteAheadLog
from tests.node_world import validator_identities
from tests.spec.ledger_world import World


class Journal:
    """Records, in order, what reached the WAL and what was sent."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, object]] = []


class JournaledWal:
    def __init__(self, wal: WriteAheadLog, journal: Journal, *, fail: bool = False) -> None:
        self.wal = wal
        self.journal = journal
        self.fail = fail
        self._latched = False

    @property
    def records(self) -> tuple[Record, ...]:
        return self.wal.records

    @property
    def latched(self) -> bool:
        return self._latched

    def __len__(self) -> int:
        return len(self.wal)

    def compact(self, live: Callable[[Sequence[Record]], Sequence[Record]]) -> int:
        return self.wal.compact(live)

    def append(self, records: tuple[Record, ...]) -> None:
        if self.fail:  # the disk refused the write: the real WAL latches the same way
            self._latched = True
            raise WalLatchedError("write-ahead log write failed and latched: disk full")
        self.wal.append(records)
        self.journal.entries.append(("synced", records))


class JournaledLinks:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def send(self, to: int, message: Message) -> None:
        self.journal.entries.append(("sent", message))

    def broadcast(self, message: Message) -> None:
        self.journal.entries.append(("sent", message))

    def gossip_tx(self, tx_bytes: bytes) -> None:
        self.journal.entries.append(("gossip", tx_bytes))

    def connected(self, peer: int) -> bool:
        return False

    async def fetch_blocks(self, peer: int, first: int, last: int, max_bytes: int) -> list[bytes]:
        raise ConnectionError("no peers in this test")


def _primary(tmp_path: Path, world: World, *, fail: bool) -> tuple[NodeRuntime, Journal]:
    store = LevelDBStore(tmp_path / "chain", block_claims=stored_block_claim)
    open_chain(store, world.genesis)
    journal = Journal()
    wal = JournaledWal(WriteAheadLog(tmp_path / "wal"), journal, fail=fail)
    runtime = NodeRuntime(
        genesis=world.genesis,
        identity=validator_identities(world)[0],  # the primary of view 0
        store=store,
        wal=wal,
        links=JournaledLinks(journal),
        proof_verifier=inline_verifier,
        wall_clock_ms=lambda: int(time.time() * 1000),
        settings=RuntimeSettings(tick_ms=20),
        worker=SerialWorker(),
    )
    return runtime, journal


async def _propose_one(runtime: NodeRuntime, world: World, journal: Journal) -> None:
    attest = build_attest(world.bank_b.identity, world.chain_id, "d", b"\x01" * 32, nonce=1)
    task = asyncio.get_running_loop().create_task(runtime.run())
    assert await runtime.submit(attest.encode()) == Accepted(attest.tx_id)
    # Wait for the proposal (or the halt); 4 s at most.
    for _ in range(400):
        if runtime.stopped or any(isinstance(m, PrePrepare) for _, m in journal.entries):
            break
        await asyncio.sleep(0.01)
    runtime.stop("test over")
    await asyncio.wait_for(task, 10)


def test_the_pre_prepare_leaves_only_after_its_vote_is_synced(tmp_path: Path) -> None:
    world = World()
    runtime, journal = _primary(tmp_path, world, fail=False)
    asyncio.run(_propose_one(runtime, world, journal))
    kinds = [kind for kind, _ in journal.entries if kind != "gossip"]
    sent = [m for kind, m in journal.entries if kind == "sent"]
    assert any(isinstance(m, PrePrepare) for m in sent)
    first_pre_prepare = next(
        i for i, (kind, m) in enumerate(journal.entries) if isinstance(m, PrePrepare)
    )
    synced_before = [r for kind, r in journal.entries[:first_pre_prepare] if kind == "synced"]
    assert synced_before, kinds
    assert runtime.stop_reason == "test over"


def test_a_wal_write_failure_stops_the_node_before_it_sends(tmp_path: Path) -> None:
    world = World()
    runtime, journal = _primary(tmp_path, world, fail=True)
    asyncio.run(_propose_one(runtime, world, journal))
    assert [kind for kind, _ in journal.entries if kind != "gossip"] == []
    assert runtime.stop_reason is not None and "write-ahead log failed" in runtime.stop_reason
    status = runtime.status()
    assert status.stopped and status.wal_latched
    late = build_attest(world.bank_b.identity, world.chain_id, "d", b"\x02" * 32, nonce=2)
    assert asyncio.run(runtime.submit(late.encode())) == Busy("NODE_STOPPED", 5)


def test_the_primary_keeps_at_most_max_inflight_batches_unexecuted(tmp_path: Path) -> None:
    """A primary alone (no peer prepares, nothing commits) with one tx per block
    proposes as many batches as the cap allows, however many txs wait: the
    node's default is 4, below the watermark window."""
    world = World()
    params = dataclasses.replace(world.genesis.params, max_block_txs=1)
    world.genesis = dataclasses.replace(world.genesis, params=params)
    world.chain_id = world.genesis.chain_id
    assert params.watermark_window_blocks >= 10  # the window alone would let all ten go
    runtime, journal = _primary(tmp_path, world, fail=False)

    async def submit_many() -> None:
        task = asyncio.get_running_loop().create_task(runtime.run())
        for nonce in range(1, 11):
            digest = nonce.to_bytes(32, "big")
            attest = build_attest(world.bank_b.identity, world.chain_id, "d", digest, nonce=nonce)
            assert await runtime.submit(attest.encode()) == Accepted(attest.tx_id)
        await asyncio.sleep(0.5)  # the feeder hands all ten to the core within ms
        runtime.stop("test over")
        await asyncio.wait_for(task, 10)

    asyncio.run(submit_many())
    # Retransmissions repeat the same pre-prepares.
    proposed = sorted({m.seq for _, m in journal.entries if isinstance(m, PrePrepare)})
    assert proposed == [1, 2, 3, 4]
    assert len(runtime.replica.pending) == 10
