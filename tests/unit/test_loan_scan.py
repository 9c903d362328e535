"""The borrower's and the auditor's loan scans (ledger/loan_scan.py)."""

from __future__ import annotations

import dataclasses

from ledger.auditor import audit
from ledger.build import sign_tx
from ledger.exposure import exposure_problem, prove_exposure
from ledger.loan_build import seal_loan_memos
from ledger.loan_scan import BAD_INTEREST_MEMO, LoanTracker
from ledger.loans import interest_for
from ledger.tx import LoanAccrueBody
from privacy import group
from privacy.memo import Opening
from tests.spec.ledger_world import USD, committed_blocks
from tests.spec.test_loans_spec import PRINCIPAL, TERMS, accrue, keys, repay, setup


def test_scans_follow_the_outstanding_and_feed_the_exposure_proof() -> None:
    p = setup()
    w = p.world
    accrued = accrue(p)
    w.commit(p.store, [accrued.built])
    paid = repay(dataclasses.replace(p, principal=accrued.outstanding), 250)
    w.commit(p.store, [paid.built])
    expected = PRINCIPAL + interest_for(PRINCIPAL, TERMS.rate_bps) - 250
    borrower = LoanTracker("borrower", w.alice.memo_private, w.alice.key)
    auditor = LoanTracker("auditor", w.auditor.memo_private)
    for tracker in (borrower, auditor):
        tracker.scan_all(committed_blocks(p.store), w.chain_id)
        assert tracker.flags == []
        assert tracker.loans[p.loan.tx_id].outstanding.value == expected  # type: ignore[union-attr]
    report = audit(committed_blocks(p.store), p.store, w.chain_id, [w.auditor.memo_private])
    assert report.ok, report  # loan outputs keep the supply invariant and open their memos
    by_lender, by_borrower = auditor.totals()
    assert by_lender == {(w.bank_a.key, USD): expected} and by_borrower == {w.alice.key: expected}
    openings = borrower.outstanding_openings(w.alice.key)
    proof = prove_exposure(p.store, w.chain_id, w.alice.key, expected, openings=openings)
    assert exposure_problem(p.store, w.chain_id, proof) is None


def test_the_borrower_flags_an_interest_memo_that_does_not_open_c_i() -> None:
    p = setup()
    w = p.world
    honest = accrue(p)
    body = LoanAccrueBody.decode(honest.built.tx.body)
    r_i = (honest.outstanding.blinding - p.principal.blinding) % group.ORDER
    interest = interest_for(PRINCIPAL, TERMS.rate_bps)
    lie = seal_loan_memos(Opening(interest + 1, r_i, USD), keys(w, w.bank_a, w.alice))
    lying = sign_tx(w.bank_a.identity, dataclasses.replace(body, memos=lie), w.chain_id)
    w.commit(p.store, [lying])  # the chain accepts it: C_I itself is proven correct
    borrower = LoanTracker("borrower", w.alice.memo_private, w.alice.key)
    borrower.scan_all(committed_blocks(p.store), w.chain_id)
    assert [f.reason for f in borrower.flags] == [BAD_INTEREST_MEMO]
    assert borrower.flags[0].tx_id == lying.tx_id


def test_an_exposure_proof_made_at_h_verifies_at_h_after_the_chain_moved_on() -> None:
    """Loan history by height: the state at h (``Store.state_at``) keeps the loans and
    commitments of h, so a proof made then still verifies, while the tip's state,
    whose outstanding has changed, refuses it."""
    p = setup()
    w = p.world
    height = p.store.height()
    borrower = LoanTracker("borrower", w.alice.memo_private, w.alice.key)
    borrower.scan_all(committed_blocks(p.store), w.chain_id)
    proof = prove_exposure(
        p.store,
        w.chain_id,
        w.alice.key,
        PRINCIPAL,
        openings=borrower.outstanding_openings(w.alice.key),
    )
    w.commit(p.store, [accrue(p).built])  # the outstanding grows past the limit
    past = p.store.state_at(height)
    assert past is not None
    assert exposure_problem(past, w.chain_id, proof) is None
    assert (exposure_problem(p.store, w.chain_id, proof) or "").startswith("WRONG_HEIGHT")
    forged = dataclasses.replace(proof, height=p.store.height())
    assert exposure_problem(p.store, w.chain_id, forged) == "BAD_PROOF"


def test_a_tracker_follows_only_the_loans_where_its_party_has_its_role() -> None:
    """A bank is a lender on some loans and may borrow on others: its lender tracker must
    not read a loan it borrowed (that loan's lender memo is another bank's, so it would be
    flagged BAD_LOAN_MEMO) and its borrower tracker not a loan it made."""
    p = setup()
    w = p.world
    blocks = committed_blocks(p.store)
    as_lender = LoanTracker("lender", w.bank_a.memo_private, w.bank_a.key)
    as_borrower = LoanTracker("borrower", w.bank_a.memo_private, w.bank_a.key)
    for tracker in (as_lender, as_borrower):
        tracker.scan_all(blocks, w.chain_id)
    assert list(as_lender.loans) == [p.loan.tx_id] and as_lender.flags == []
    assert as_borrower.loans == {} and as_borrower.flags == []
    alice_as_lender = LoanTracker("lender", w.alice.memo_private, w.alice.key)
    alice_as_lender.scan_all(blocks, w.chain_id)
    assert alice_as_lender.loans == {} and alice_as_lender.flags == []
