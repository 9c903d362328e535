"""A tx rejected at execution is still reported ``rejected`` (with its height) after the
node restarts: the runtime reads the stored rejected lists back (node/rejections.py).
Before, the answer lived in memory only, so a restarted node said 404 TX_NOT_FOUND."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from consensus.actions import Execute
from consensus.messages import ProposalMetadata
from ledger.build import build_attest
from ledger.chain import open_chain
from ledger.leveldb_store import LevelDBStore
from ledger.proof_cache import ProofCache
from ledger.stored_block import stored_block_claim
from node.app import LedgerApp
from node.rejections import RecentRejections
from node.services import Committed, TxRejectedStatus, Unknown
from tests.node_net import MemoryNetwork
from tests.node_world import batch_of, certificate_for
from tests.spec.ledger_world import GENESIS_TIME_MS, World
from tests.unit.test_node_runtime import Cluster, small_world


def _reject(tx_id: bytes, height: int) -> TxRejectedStatus:
    return TxRejectedStatus(tx_id, "REPLAYED", height)


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RecentRejections(0)


def test_the_oldest_rejection_is_forgotten_first() -> None:
    recent = RecentRejections(2)
    for n in range(3):
        recent.remember(_reject(bytes([n]) * 32, n))
    assert recent.get(b"\x00" * 32) is None
    assert recent.get(b"\x02" * 32) == _reject(b"\x02" * 32, 2)
    recent.remember(_reject(b"\x01" * 32, 5))  # seen again: now the newest
    recent.remember(_reject(b"\x03" * 32, 6))
    assert len(recent) == 2
    assert recent.get(b"\x02" * 32) is None
    assert recent.get(b"\x01" * 32) == _reject(b"\x01" * 32, 5)


def _commit_blocks(world: World, path: Path, batches: list[list[bytes]]) -> LedgerApp:
    """Execute ``batches`` at heights 1, 2, ... on the store at ``path`` (then closed)."""
    store = LevelDBStore(path, block_claims=stored_block_claim)
    open_chain(store, world.genesis)
    app = LedgerApp(store, world.genesis, ProofCache())
    for seq, payloads in enumerate(batches, start=1):
        batch = batch_of(world, payloads)
        metadata = ProposalMetadata(GENESIS_TIME_MS + seq, 0)
        app.execute(Execute(seq, batch, metadata, certificate_for(world, batch, metadata, seq)))
    store.close()
    return app


def test_a_restarted_runtime_still_reports_txs_rejected_at_execution(tmp_path: Path) -> None:
    world = small_world()
    signer = world.bank_b.identity
    first = build_attest(signer, world.chain_id, "doc", b"\x01" * 32, nonce=1)
    rival = build_attest(signer, world.chain_id, "doc", b"\x02" * 32, nonce=1)
    late = build_attest(signer, world.chain_id, "doc", b"\x03" * 32, nonce=1)
    # Height 1: the rival loses to the first; a second copy of the first is rejected
    # too, but the tx is committed, so that rejection decides nothing. Height 2: late.
    (tmp_path / "n1").mkdir()
    _commit_blocks(
        world,
        tmp_path / "n1" / "chain",
        [[first.encode(), rival.encode(), first.encode(), b"\x93junk"], [late.encode()]],
    )

    async def scenario() -> None:
        cluster = Cluster(tmp_path, world, MemoryNetwork(7))
        node = cluster.start(1)
        try:
            assert isinstance(node.tx_status(first.tx_id), Committed)
            rival_status = node.tx_status(rival.tx_id)
            assert isinstance(rival_status, TxRejectedStatus)
            assert rival_status.height == 1 and rival_status.reason_code
            late_status = node.tx_status(late.tx_id)
            assert isinstance(late_status, TxRejectedStatus) and late_status.height == 2
            assert isinstance(node.tx_status(b"\x07" * 32), Unknown)
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


def test_restore_keeps_the_newest_rejections_within_the_bound(tmp_path: Path) -> None:
    world = World()
    signer = world.bank_b.identity
    rivals = [
        build_attest(signer, world.chain_id, "doc", bytes([n]) * 32, nonce=1) for n in range(4)
    ]
    # rivals[0] commits at height 1; the others are rejected at heights 2, 3 and 4.
    _commit_blocks(world, tmp_path / "chain", [[r.encode()] for r in rivals])
    store = LevelDBStore(tmp_path / "chain", block_claims=stored_block_claim)
    try:
        recent = RecentRejections(2)
        recent.restore(store, world.chain_id)
        assert [recent.get(r.tx_id) is not None for r in rivals] == [False, False, True, True]
        window = RecentRejections(10)
        window.restore(store, world.chain_id, scan_heights=2)
        assert [window.get(r.tx_id) is not None for r in rivals] == [False, False, True, True]
        status = window.get(rivals[3].tx_id)
        assert status is not None and status.height == 4
    finally:
        store.close()
