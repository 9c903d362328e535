"""The runtime's executor: records are synced before the sends they guard, and a WAL
write failure stops the node before anything is sent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from consensus.messages import Message, Prepare, PrePrepare
from consensus.persistence import Record, VoteRecord
from ledger.build import build_attest
from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from node.proof_pool import inline_verifier
from node.runtime import NodeRuntime, RuntimeSettings
from node.serial_worker import SerialWorker
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
        self.appends_tried = 0

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
        self.appends_tried += 1
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

    def quarantine(self, peer: int, reason: str) -> None:
        self.journal.entries.append(("quarantine", (peer, reason)))

    async def fetch_blocks(self, peer: int, first: int, last: int, max_bytes: int) -> list[bytes]:
        raise ConnectionError("no peers in this test")


def _primary(tmp_path: Path, world: World, *, fail: bool) -> tuple[NodeRuntime, Journal]:
    return _validator(tmp_path, world, 0, fail=fail)  # the primary of view 0


def _validator(
    tmp_path: Path, world: World, index: int, *, fail: bool
) -> tuple[NodeRuntime, Journal]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = LevelDBStore(tmp_path / "chain", block_claims=stored_block_claim)
    open_chain(store, world.genesis)
    journal = Journal()
    wal = JournaledWal(WriteAheadLog(tmp_path / "wal"), journal, fail=fail)
    runtime = NodeRuntime(
        genesis=world.genesis,
        identity=validator_identities(world)[index],
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
    assert asyncio.run(runtime.submit(late.encode())) == Busy("NODE_STOPPED", 5_000)


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


def _three_pre_prepares(tmp_path: Path, world: World) -> list[PrePrepare]:
    """The primary's signed PRE-PREPAREs for seqs 1-3 (one attest per block)."""
    params = dataclasses.replace(world.genesis.params, max_block_txs=1)
    world.genesis = dataclasses.replace(world.genesis, params=params)
    world.chain_id = world.genesis.chain_id
    runtime, journal = _primary(tmp_path / "primary", world, fail=False)

    async def propose() -> None:
        task = asyncio.get_running_loop().create_task(runtime.run())
        for nonce in range(1, 4):
            digest = nonce.to_bytes(32, "big")
            attest = build_attest(world.bank_b.identity, world.chain_id, "d", digest, nonce=nonce)
            assert await runtime.submit(attest.encode()) == Accepted(attest.tx_id)
        for _ in range(400):
            if len({m.seq for _, m in journal.entries if isinstance(m, PrePrepare)}) == 3:
                break
            await asyncio.sleep(0.01)
        runtime.stop("test over")
        await asyncio.wait_for(task, 10)

    asyncio.run(propose())
    by_seq = {m.seq: m for _, m in journal.entries if isinstance(m, PrePrepare)}
    assert sorted(by_seq) == [1, 2, 3]
    return [by_seq[seq] for seq in (1, 2, 3)]


def _backup_fed(
    tmp_path: Path, world: World, pre_prepares: list[PrePrepare], *, fail: bool
) -> tuple[NodeRuntime, Journal, JournaledWal]:
    """Backup 1 with the PRE-PREPAREs already queued when its loop starts (as when
    they arrived while it waited on a sync); run until it sent or halted."""
    runtime, journal = _validator(tmp_path / "backup", world, 1, fail=fail)
    wal = runtime.wal
    assert isinstance(wal, JournaledWal)

    async def run() -> None:
        for message in pre_prepares:
            runtime.on_peer_message(0, message)
        task = asyncio.get_running_loop().create_task(runtime.run())
        for _ in range(400):
            sent = [m for kind, m in journal.entries if kind == "sent"]
            if runtime.stopped or len(sent) >= len(pre_prepares):
                break
            await asyncio.sleep(0.01)
        runtime.stop("test over")
        await asyncio.wait_for(task, 10)

    asyncio.run(run())
    return runtime, journal, wal


def test_queued_events_share_one_synced_append_before_any_of_their_sends(
    tmp_path: Path,
) -> None:
    """Group commit: three PRE-PREPAREs queued together are stepped together, their
    three PREPARE votes synced in one append, and only then are the PREPAREs sent.
    (Before group commit: one append per event, each followed by its send.)"""
    world = World()
    pre_prepares = _three_pre_prepares(tmp_path, world)
    runtime, journal, wal = _backup_fed(tmp_path, world, pre_prepares, fail=False)
    assert runtime.stop_reason == "test over"
    kinds = [kind for kind, _ in journal.entries if kind != "gossip"]
    assert kinds[:4] == ["synced", "sent", "sent", "sent"], kinds
    synced = journal.entries[0][1]
    assert isinstance(synced, tuple)
    voted = sorted(
        r.message.seq
        for r in synced
        if isinstance(r, VoteRecord) and isinstance(r.message, Prepare)
    )
    assert voted == [1, 2, 3]
    prepares = [m for kind, m in journal.entries[1:4] if isinstance(m, Prepare)]
    assert [m.seq for m in prepares] == [1, 2, 3]
    assert wal.appends_tried == len([k for k in kinds if k == "synced"])


def test_a_failed_group_append_sends_nothing_of_the_group_and_steps_no_more(
    tmp_path: Path,
) -> None:
    """The latch under group commit: the one append of the group fails, so none of
    the three PREPAREs leaves, the node stops, and nothing is appended again."""
    world = World()
    pre_prepares = _three_pre_prepares(tmp_path, world)
    runtime, journal, wal = _backup_fed(tmp_path, world, pre_prepares, fail=True)
    assert [kind for kind, _ in journal.entries] == []
    assert runtime.stop_reason is not None and "write-ahead log failed" in runtime.stop_reason
    assert wal.appends_tried == 1
    assert runtime.status().wal_latched
