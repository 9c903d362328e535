"""Admission defers a transfer's balance (excess) proof to the batch check
(``node.mempool.check_balances``): a bad one is still ``UNBALANCED``, before any
later rule's reason, and no tx is accepted on a balance proof nobody checked."""

from __future__ import annotations

import dataclasses

from ledger.build import BuiltTx, seal_outputs, sign_tx
from ledger.loan_build import build_offer, complete_origination, sign_consent
from ledger.mempool import PendingTxs
from ledger.proof_cache import ProofCache
from ledger.reasons import Reason, TxRejected
from ledger.rules import range_statement
from ledger.store import MemoryStore
from ledger.tx import TransferBody, decode_tx
from node.mempool import Mempool, ProofWanted, check_balances
from node.services import Accepted, Rejected
from privacy import group
from tests.spec.ledger_world import USD, World
from tests.spec.test_loans_spec import TERMS, keys, setup


def _transfers(world: World) -> tuple[MemoryStore, BuiltTx, BuiltTx]:
    """A store where alice holds 9 USD, her honest transfer of it to bob and one
    whose excess proof is for another blinding (so Σ in − Σ out is not proven)."""
    store = world.new_store()
    issue = world.issue(world.bank_a, USD, [world.alice.plan(9)])
    world.commit(store, [issue])
    honest = world.transfer(world.alice, USD, [world.spend(issue, 0)], [world.bob.plan(9)])
    oid, opening = world.spend(issue, 0)
    sealed = seal_outputs([world.carol.plan(9)], USD, world.auditor.memo_public)
    body = TransferBody(world.alice.key, USD, (oid,), sealed.outputs, sealed.range_proof)
    wrong = (opening.blinding - sealed.openings[0].blinding + 1) % group.ORDER
    unbalanced = sign_tx(world.alice.identity, body, world.chain_id, excess_blinding=wrong)
    return store, honest, unbalanced


def test_the_batch_decides_admission_and_a_bad_balance_is_unbalanced() -> None:
    world = World()
    store, honest, unbalanced = _transfers(world)
    mempool = Mempool(store, world.genesis, ProofCache())
    wanted = [mempool.admit(tx.encode(), 0) for tx in (honest, unbalanced)]
    assert all(isinstance(w, ProofWanted) for w in wanted)
    good, bad = wanted
    assert isinstance(good, ProofWanted) and isinstance(bad, ProofWanted)
    assert len(good.checked.excess_checks) == 1 and len(bad.checked.excess_checks) == 1
    assert check_balances([good, bad]) == [True, False]
    outcome = mempool.finish(bad, proof_ok=True, balanced=False)
    assert isinstance(outcome, Rejected) and outcome.reason_code == "UNBALANCED"
    assert mempool.finish(good, proof_ok=True, balanced=True) == Accepted(honest.tx_id)
    assert unbalanced.tx_id not in mempool and mempool.in_admission() == 0


def test_without_the_batchs_word_finish_checks_the_balance_itself() -> None:
    world = World()
    store, honest, unbalanced = _transfers(world)
    mempool = Mempool(store, world.genesis, ProofCache())
    bad = mempool.admit(unbalanced.encode(), 0)
    assert isinstance(bad, ProofWanted)
    outcome = mempool.finish(bad, proof_ok=True)  # no ``balanced``: not verified
    assert isinstance(outcome, Rejected) and outcome.reason_code == "UNBALANCED"
    good = mempool.admit(honest.encode(), 0)
    assert isinstance(good, ProofWanted)
    assert mempool.finish(good, proof_ok=True) == Accepted(honest.tx_id)


def test_a_known_range_proof_does_not_let_an_unbalanced_transfer_in() -> None:
    world = World()
    store, _, unbalanced = _transfers(world)
    cache = ProofCache()
    dtx = decode_tx(unbalanced.encode(), world.chain_id, max_tx_bytes=1 << 16)
    statement = range_statement(dtx)
    assert statement is not None
    cache.verify(statement)  # as execution would have, before this admission
    outcome = Mempool(store, world.genesis, cache).admit(unbalanced.encode(), 0)
    assert isinstance(outcome, Rejected) and outcome.reason_code == "UNBALANCED"


def test_a_later_rules_reason_does_not_hide_a_bad_deferred_balance() -> None:
    """A loan origination checks its consent nonce after its balance: with both bad,
    the reason is ``UNBALANCED`` whether the balance is deferred or not."""
    pre = setup()  # a loan with consent nonce 1 is committed
    w = pre.world
    offer = build_offer(
        w.bank_a.identity,
        borrower=w.alice.key,
        asset=USD,
        amount=100,
        terms=TERMS,
        inputs=[w.spend(pre.loan, 1)],  # bank A's change from the first loan
        keys=keys(w, w.bank_a, w.alice),
        consent_nonce=1,  # replayed
    )
    consent = sign_consent(w.alice.identity, w.chain_id, offer.body)
    replayed = complete_origination(w.bank_a.identity, w.chain_id, offer, consent).built
    unbalanced_offer = dataclasses.replace(
        offer, excess_blinding=(offer.excess_blinding + 1) % group.ORDER
    )
    both = complete_origination(w.bank_a.identity, w.chain_id, unbalanced_offer, consent).built
    pending = PendingTxs(pre.store, w.genesis)
    for tx, reason in ((replayed, Reason.REPLAYED), (both, Reason.UNBALANCED)):
        dtx = decode_tx(tx.encode(), w.chain_id, max_tx_bytes=1 << 20)
        for defer in (True, False):  # deferred first: the other run remembers the answer
            try:
                pending.precheck(dtx, defer_excess=defer)
            except TxRejected as exc:
                assert exc.reason is reason, (defer, exc)
            else:
                raise AssertionError(f"precheck passed {reason} (defer={defer})")
