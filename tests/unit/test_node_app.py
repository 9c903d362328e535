"""LedgerApp: Execute -> execute_batch (proof cache as verifier) -> one synced block write."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from consensus.actions import Execute
from consensus.certificate import verify_commit_certificate
from consensus.events import Executed
from consensus.messages import ProposalMetadata
from consensus.wire import decode_certificate
from ledger.build import build_attest
from ledger.chain import open_chain
from ledger.identity import verify_self_tagged
from ledger.invariants import InvariantViolation
from ledger.leveldb_store import LevelDBStore
from ledger.proof_cache import ProofCache
from ledger.rules import range_statement
from ledger.stored_block import stored_block_claim
from ledger.tx import decode_tx
from node.app import LedgerApp, validate_proposal_for
from privacy.rangeproof import RangeStatement, batch_verify
from tests.node_world import batch_of, certificate_for
from tests.spec.ledger_world import GENESIS_TIME_MS, USD, World


def _execute(world: World, payloads: list[bytes], seq: int, view: int = 0) -> Execute:
    batch = batch_of(world, payloads)
    metadata = ProposalMetadata(GENESIS_TIME_MS + seq, view)
    return Execute(seq, batch, metadata, certificate_for(world, batch, metadata, seq))


def test_execute_commits_the_block_certificate_and_rejected_list_to_leveldb(
    tmp_path: Path,
) -> None:
    world = World()
    store = LevelDBStore(tmp_path / "chain", block_claims=stored_block_claim)
    open_chain(store, world.genesis)
    app = LedgerApp(store, world.genesis, ProofCache())
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10)])
    attest = build_attest(world.bank_b.identity, world.chain_id, "x", b"\x01" * 32, nonce=1)
    action = _execute(world, [issue.encode(), b"\x93junk", attest.encode()], seq=1)
    applied = app.execute(action)
    assert applied.executed == Executed(1, store.state_root())
    assert applied.tx_ids == (issue.tx_id, attest.tx_id)
    assert [(r.index_in_batch, r.reason_code) for r in applied.rejected] == [(1, "MALFORMED")]
    store.close()
    reopened = LevelDBStore(tmp_path / "chain", block_claims=stored_block_claim)
    assert reopened.height() == 1
    assert reopened.block_hash_at(1) == applied.block_hash
    certificate = decode_certificate(reopened.certificate_at(1) or b"")
    assert certificate == action.certificate
    validators = [v.public_key for v in world.genesis.validators]
    assert verify_commit_certificate(certificate, validators, verify_self_tagged, world.chain_id)
    assert reopened.rejected_at(1) == applied.rejected
    reopened.close()


def test_proofs_the_mempool_verified_are_not_verified_again() -> None:
    world = World()
    store = world.new_store()
    calls: list[int] = []

    def counting(statements: Sequence[RangeStatement]) -> list[int]:
        calls.append(len(statements))
        return batch_verify(statements)

    cache = ProofCache(batch_verifier=counting)
    issue = world.issue(world.bank_a, USD, [world.alice.plan(10), world.alice.plan(5)])
    LedgerApp(store, world.genesis, cache).execute(_execute(world, [issue.encode()], seq=1))
    assert calls == [1]
    spend = world.transfer(
        world.alice, USD, [World.spend(issue, 0)], [world.bob.plan(4), world.alice.plan(6)]
    )
    max_tx_bytes = world.genesis.params.max_tx_bytes
    statement = range_statement(
        decode_tx(spend.encode(), world.chain_id, max_tx_bytes=max_tx_bytes)
    )
    assert statement is not None
    cache.mark_verified([statement])  # as the mempool's proof pool does
    LedgerApp(store, world.genesis, cache).execute(_execute(world, [spend.encode()], seq=2))
    assert calls == [1]
    assert store.tx_location(spend.tx_id) is not None


def test_an_execute_out_of_order_is_a_broken_invariant() -> None:
    world = World()
    store = world.new_store()
    app = LedgerApp(store, world.genesis, ProofCache())
    with pytest.raises(InvariantViolation, match="seq 2 on a store at height 0"):
        app.execute(_execute(world, [], seq=2))
    assert store.height() == 0


@pytest.mark.parametrize(
    ("timestamp_ms", "parent_ms", "problem"),
    [
        (1_000, 1_000, None),
        (999, 1_000, "before the previous block's"),
        (31_000 + 5_000, None, None),
        (31_001 + 5_000, None, "ms ahead"),
    ],
)
def test_proposal_timestamps_follow_the_ledger_rule(
    timestamp_ms: int, parent_ms: int | None, problem: str | None
) -> None:
    world = World()
    validate = validate_proposal_for(world.genesis)
    parent = None if parent_ms is None else ProposalMetadata(parent_ms, 0)
    found = validate(ProposalMetadata(timestamp_ms, 0), parent, 6_000)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
