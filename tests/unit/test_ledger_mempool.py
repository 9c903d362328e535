"""Mempool admission in two phases, the pending txs, and the verified-proof cache."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from ledger import mempool as mempool_module
from ledger.apply import apply_block
from ledger.build import build_attest, seal_outputs, sign_tx
from ledger.mempool import PendingTxs, admit_decoded, admit_tx, verify_statement
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


# --- two-phase admission ----------------------------------------------------------------


def test_resubmitting_an_admitted_tx_is_duplicate_tx(world: World) -> None:
    # Issue 8 §2.6: it used to be DOUBLE_SPEND (a transfer) or REPLAYED (a nonce kind).
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(5)])
    world.commit(store, [issue])
    pay = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.bob.plan(5)])
    attest = build_attest(world.bank_a.identity, world.chain_id, "x", b"\x01" * 32, nonce=900)
    pending = PendingTxs(store, world.genesis)
    for tx in (pay, attest):
        admit_tx(store, tx.encode(), world.genesis, pending=pending)
        with pytest.raises(TxRejected) as info:
            admit_tx(store, tx.encode(), world.genesis, pending=pending)
        assert info.value.reason is Reason.DUPLICATE_TX
        assert info.value.detail == "tx already in the mempool"
    assert len(pending) == 2 and pay.tx_id in pending


def test_phase_one_runs_every_cheap_check_but_not_the_range_proof(world: World) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(9)])
    world.commit(store, [issue])
    oid, opening = world.spend(issue, 0)
    sealed = seal_outputs([world.bob.plan(9)], USD, world.auditor.memo_public)
    other = seal_outputs([world.bob.plan(9)], USD, world.auditor.memo_public)
    body = TransferBody(world.alice.key, USD, (oid,), sealed.outputs, other.range_proof)
    x = (opening.blinding - sealed.openings[0].blinding) % group.ORDER
    bad_proof = sign_tx(world.alice.identity, body, world.chain_id, excess_blinding=x)
    pending = PendingTxs(store, world.genesis)
    dtx = decode_tx(bad_proof.encode(), world.chain_id, max_tx_bytes=1 << 16)
    checked = pending.precheck(dtx)  # signature, inputs, balance: all fine
    assert checked.statement is not None and checked.dtx is dtx
    assert len(pending) == 0 and not pending.view.delta()  # phase 1 writes nothing
    with pytest.raises(TxRejected) as info:
        verify_statement(checked.statement, None)
    assert info.value.reason is Reason.BAD_RANGE_PROOF
    # A cheap failure is found without any proof work.
    forged = dataclasses.replace(bad_proof.tx, signature=b"\x00" * 64)
    with pytest.raises(TxRejected) as info:
        pending.precheck(decode_tx(forged.encode(), world.chain_id, max_tx_bytes=1 << 16))
    assert info.value.reason is Reason.BAD_SIGNATURE


def test_proofs_verified_elsewhere_then_accepted_and_a_stale_check_is_redone(
    world: World,
) -> None:
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(50)])
    world.commit(store, [issue])
    pay = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.bob.plan(50)])
    rival = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.carol.plan(50)])
    pending = PendingTxs(store, world.genesis)
    checked = [
        pending.precheck(decode_tx(t.encode(), world.chain_id, max_tx_bytes=1 << 16))
        for t in (pay, rival)
    ]
    statements = [c.statement for c in checked if c.statement is not None]
    spy = Spy()
    cache = ProofCache(batch_verifier=spy)
    fresh = cache.unseen(statements + statements)  # each once, in order
    assert fresh == statements
    assert [batch_verify([s]) for s in fresh] == [[], []]  # "the worker pool"
    cache.mark_verified(fresh)
    assert cache.unseen(statements) == []
    assert cache.batch_verify(statements) == [] and spy.calls == []
    pending.accept(checked[0])
    # Both were prechecked on the same pending state: the rival's check is stale and redone.
    with pytest.raises(TxRejected) as info:
        pending.accept(checked[1])
    assert info.value.reason is Reason.DOUBLE_SPEND
    assert len(pending) == 1 and rival.tx_id not in pending


def test_admit_decoded_takes_the_decoded_tx_without_decoding_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.new_store()
    attest = build_attest(world.bank_b.identity, world.chain_id, "y", b"\x02" * 32, nonce=901)
    dtx = decode_tx(attest.encode(), world.chain_id, max_tx_bytes=1 << 16)

    def no_decoding(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("decoded a second time")

    monkeypatch.setattr(mempool_module, "decode_tx", no_decoding)
    receipt = admit_decoded(PendingTxs(store, world.genesis), dtx)
    assert receipt.tx_id == attest.tx_id


def test_readmit_keeps_an_unchanged_tx_as_it_is_and_rechecks_a_changed_one(
    world: World,
) -> None:
    """After every block the node re-admits every pending tx: one whose reads are
    unchanged is added as it is, with no copy (before: two ``dataclasses.replace``
    per tx per block); one whose reads changed is checked again."""
    store = world.new_store()
    first, second = (
        build_attest(world.bank_b.identity, world.chain_id, "r", bytes([n]) * 32, nonce=n)
        for n in (1, 2)
    )
    pending = PendingTxs(store, world.genesis)
    checked = []
    for attest in (first, second):
        one = pending.precheck(decode_tx(attest.encode(), world.chain_id, max_tx_bytes=1 << 16))
        pending.accept(one)
        checked.append(one)
    rebuilt = PendingTxs(store, world.genesis)
    assert rebuilt.readmit(checked[0]) is checked[0]
    assert rebuilt.readmit(checked[1]) is checked[1]
    assert len(rebuilt) == 2
    without_first = PendingTxs(store, world.genesis)
    rechecked = without_first.readmit(checked[1])  # the nonce it read (1) is not there now
    assert rechecked is not checked[1] and rechecked.dtx.tx_id == second.tx_id
    assert rechecked.reads != checked[1].reads
    with pytest.raises(TxRejected) as refused:
        without_first.readmit(checked[1])
    assert refused.value.reason is Reason.DUPLICATE_TX


def two_independent_transfers(world: World) -> tuple[object, list[bytes]]:
    """A store with an issue to alice and bob, and a transfer from each: independent,
    except that both advance the asset's totals."""
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(70), world.bob.plan(30)])
    world.commit(store, [issue])
    from_alice = world.transfer(
        world.alice, USD, [world.spend(issue, 0)], [world.carol.plan(50), world.alice.plan(20)]
    )
    from_bob = world.transfer(
        world.bob, USD, [world.spend(issue, 1)], [world.carol.plan(10), world.bob.plan(20)]
    )
    return store, [from_alice.encode(), from_bob.encode()]


def test_readmit_rebases_a_transfer_whose_only_changed_read_is_its_asset_totals(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every transfer of an asset advances the asset's record, so before, a rebuild
    that dropped one transfer ran the rules again for every other of that asset."""
    store, payloads = two_independent_transfers(world)
    pending = PendingTxs(store, world.genesis)
    checked = []
    for payload in payloads:
        one = pending.precheck(decode_tx(payload, world.chain_id, max_tx_bytes=1 << 16))
        pending.accept(one)
        checked.append(one)  # the second read the totals the first advanced
    expected = PendingTxs(store, world.genesis)
    spec = expected.precheck(decode_tx(payloads[1], world.chain_id, max_tx_bytes=1 << 16))

    def no_rules(*_args: object) -> object:
        raise AssertionError("the rules ran again")

    rebuilt = PendingTxs(store, world.genesis)  # without the first transfer
    monkeypatch.setattr(rebuilt, "_stateful", no_rules)
    rebased = rebuilt.readmit(checked[1], duplicates_checked=True)
    assert rebased is not checked[1]
    assert dict(rebased.delta.items()) == dict(spec.delta.items())
    assert rebased.reads == spec.reads and rebased.receipt == spec.receipt
    # On the view it was rebased onto, it now holds as it is.
    assert PendingTxs(store, world.genesis).readmit(rebased, duplicates_checked=True) is rebased
