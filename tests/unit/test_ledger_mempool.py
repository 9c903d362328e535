"""Mempool admission in two phases, the pending txs, and the verified-proof cache."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ledger.apply import apply_block
from ledger.build import seal_outputs, sign_tx
from ledger.mempool import PendingTxs, admit_tx
from ledger.proof_cache import ProofCache
from ledger.reasons import Reason, TxRejected
from ledger.rules import range_statement
from ledger.tx import TransferBody, decode_tx
from privacy import group
from privacy.rangeproof import RangeStatement, batch_verify
from tests.spec.ledger_world import USD, World


class Spy:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, statements: Sequence[RangeStatement]) -> list[int]:
        self.calls.append(len(statements))
        return batch_verify(statements)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_admission_on_a_pending_view_then_the_block_reuses_the_verified_proofs(
    world: World,
) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(50), world.bob.plan(50)])
    world.commit(store, [issue])
    pay = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.bob.plan(50)])
    again = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.carol.plan(50)])
    onward = world.transfer(world.bob, USD, [world.spend(pay, 0)], [world.carol.plan(50)])
    spy = Spy()
    cache = ProofCache(batch_verifier=spy)
    pending = PendingTxs(store, world.genesis)
    admit_tx(store, pay.encode(), world.genesis, pending=pending, proof_cache=cache)
    # The pending view makes a competing spend a double spend, and a dependant valid.
    with pytest.raises(TxRejected) as info:
        admit_tx(store, again.encode(), world.genesis, pending=pending, proof_cache=cache)
    assert info.value.reason is Reason.DOUBLE_SPEND
    admit_tx(store, onward.encode(), world.genesis, pending=pending, proof_cache=cache)
    assert len(cache) == 2
    block = world.propose(store, [pay, onward])
    apply_block(store, block, world.genesis, range_verifier=cache.batch_verify)
    assert spy.calls == []  # nothing left to verify
    # Without the pending view, the dependant's input does not exist yet.
    with pytest.raises(TxRejected) as info:
        admit_tx(store, onward.encode(), world.genesis)
    assert info.value.reason is Reason.UNKNOWN_INPUT


def test_cache_batch_verifies_only_unseen_statements_and_maps_indices(world: World) -> None:
    chain = world.chain_id
    a = world.issue(world.bank_a, USD, [world.alice.plan(1)])
    b = world.issue(world.bank_a, USD, [world.alice.plan(2)])
    seen, good = (
        range_statement(decode_tx(t.encode(), chain, max_tx_bytes=1 << 16)) for t in (a, b)
    )
    assert seen is not None and good is not None
    bad = RangeStatement(good.commitments, seen.proof, good.bits)
    spy = Spy()
    cache = ProofCache(batch_verifier=spy)
    cache.verify(seen)
    assert cache.batch_verify([seen, bad, good]) == [1]
    assert spy.calls == [2]
    assert good in cache and bad not in cache
    assert cache.batch_verify([good, seen]) == []
    assert spy.calls == [2]


def test_a_bad_proof_is_rejected_and_never_cached(world: World) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(9)])
    world.commit(store, [issue])
    oid, opening = world.spend(issue, 0)
    sealed = seal_outputs([world.bob.plan(9)], USD, world.auditor.memo_public)
    other = seal_outputs([world.bob.plan(9)], USD, world.auditor.memo_public)
    body = TransferBody(world.alice.key, USD, (oid,), sealed.outputs, other.range_proof)
    x = (opening.blinding - sealed.openings[0].blinding) % group.ORDER
    tx = sign_tx(world.alice.identity, body, world.chain_id, excess_blinding=x)
    cache = ProofCache()
    with pytest.raises(TxRejected) as info:
        admit_tx(store, tx.encode(), world.genesis, proof_cache=cache)
    assert info.value.reason is Reason.BAD_RANGE_PROOF
    assert len(cache) == 0


def test_cache_capacity_drops_the_oldest(world: World) -> None:
    statements = [
        range_statement(
            decode_tx(
                world.issue(world.bank_a, USD, [world.alice.plan(v)]).encode(),
                world.chain_id,
                max_tx_bytes=1 << 16,
            )
        )
        for v in (1, 2, 3)
    ]
    cache = ProofCache(capacity=2)
    for statement in statements:
        assert statement is not None
        cache.verify(statement)
    assert len(cache) == 2
    assert statements[0] not in cache  # type: ignore[operator]
    assert statements[2] in cache  # type: ignore[operator]
