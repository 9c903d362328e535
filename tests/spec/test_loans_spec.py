"""Spec of the loan kinds (issue 11): every rule and every rejection, more invalid
cases than valid ones. Each rejection is checked in the mempool and in a block."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ledger.apply import apply_block
from ledger.build import BuiltTx, sign_tx
from ledger.loan_build import (
    BuiltLoanTx,
    LoanKeys,
    build_accrue,
    build_close,
    build_originate,
    build_repay,
    sign_consent,
)
from ledger.loans import get_loan, interest_for, loans_of
from ledger.mempool import admit_tx
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.store import MemoryStore
from ledger.tx import LoanAccrueBody, LoanOriginateBody, LoanTerms, Tx
from privacy import group
from privacy.memo import Opening, open_memo
from tests.spec.ledger_world import USD, Party, World, raw_block

TERMS = LoanTerms(rate_bps=500, period_blocks=1, maturity_height=50, purpose="working capital")
PRINCIPAL = 1_000


@dataclass
class Pre:
    world: World
    store: MemoryStore
    funds: BuiltTx
    """Output 0: 10 000 USD of bank A; output 1: 5 000 USD of alice."""
    loan: BuiltTx
    principal: Opening


def keys(w: World, lender: Party, borrower: Party) -> LoanKeys:
    return LoanKeys(lender.memo_public, borrower.memo_public, w.auditor.memo_public)


def originate(
    w: World, funds: BuiltTx, *, consent_nonce: int = 1, amount: int = PRINCIPAL
) -> BuiltLoanTx:
    return build_originate(
        w.bank_a.identity,
        w.alice.identity,
        w.chain_id,
        asset=USD,
        amount=amount,
        terms=TERMS,
        inputs=[w.spend(funds, 0)],
        keys=keys(w, w.bank_a, w.alice),
        consent_nonce=consent_nonce,
    )


def setup() -> Pre:
    w = World()
    store = w.new_store()
    funds = w.issue(w.bank_a, USD, [w.bank_a.plan(10_000), w.alice.plan(5_000)])
    w.commit(store, [funds])
    loan = originate(w, funds)
    w.commit(store, [loan.built])
    return Pre(w, store, funds, loan.built, loan.outstanding)


@pytest.fixture(scope="module")
def pre() -> Pre:
    return setup()


def reject(p: Pre, tx: BuiltTx | Tx, reason: Reason) -> None:
    envelope = tx.tx if isinstance(tx, BuiltTx) else tx
    with pytest.raises(TxRejected) as mempool:
        admit_tx(p.store, envelope.encode(), p.world.genesis)
    assert mempool.value.reason is reason, mempool.value
    with pytest.raises(BlockRejected) as block:
        apply_block(p.store, raw_block(p.world, p.store, [envelope]), p.world.genesis)
    assert block.value.reason is reason, block.value
    assert block.value.index == 0
    executed = p.world.execute(p.store, [envelope.encode()])
    assert [r.reason for r in executed.rejected] == [reason]


def repay(
    p: Pre,
    amount: int,
    *,
    signer: Party | None = None,
    outstanding: Opening | None = None,
    inputs: list[tuple[bytes, Opening]] | None = None,
) -> BuiltLoanTx:
    """A repay of the loan by ``signer`` (alice), proven against ``outstanding`` (the
    principal), paid from ``inputs`` (alice's 5 000 USD)."""
    w = p.world
    return build_repay(
        (signer or w.alice).identity,
        w.chain_id,
        loan_id=p.loan.tx_id,
        lender=w.bank_a.key,
        asset=USD,
        amount=amount,
        outstanding=outstanding or p.principal,
        inputs=[w.spend(p.funds, 1)] if inputs is None else inputs,
        keys=keys(w, w.bank_a, w.alice),
    )


def accrue(
    p: Pre,
    *,
    period: int = 1,
    signer: Party | None = None,
    loan_id: bytes | None = None,
    outstanding: Opening | None = None,
) -> BuiltLoanTx:
    """An accrual of ``period`` by ``signer`` (bank A), on ``outstanding`` (the principal)."""
    w = p.world
    return build_accrue(
        (signer or w.bank_a).identity,
        w.chain_id,
        loan_id=loan_id or p.loan.tx_id,
        period=period,
        rate_bps=TERMS.rate_bps,
        outstanding=outstanding or p.principal,
        keys=keys(w, w.bank_a, w.alice),
    )


# --- invalid cases ------------------------------------------------------------------


def case_overpayment_by_one(p: Pre) -> BuiltTx:
    # The borrower claims an outstanding of v + 1 and pays it: C_out − C_pay opens to −1.
    fake = Opening(p.principal.value + 1, p.principal.blinding, USD)
    return repay(p, p.principal.value + 1, outstanding=fake).built


def case_close_with_a_balance(p: Pre) -> BuiltTx:
    fake = Opening(0, p.principal.blinding, USD)
    return build_close(
        p.world.alice.identity, p.world.chain_id, loan_id=p.loan.tx_id, outstanding=fake
    )


def _shift_interest(p: Pre, delta: int) -> BuiltTx:
    honest = accrue(p).built
    body = LoanAccrueBody.decode(honest.tx.body)
    step = group.mul_base(1) if delta > 0 else group.neg(group.mul_base(1))
    return sign_tx(
        p.world.bank_a.identity,
        dataclasses.replace(body, interest=group.add(body.interest, step)),
        p.world.chain_id,
    )


def case_interest_one_unit_more(p: Pre) -> BuiltTx:
    return _shift_interest(p, +1)


def case_interest_one_unit_less(p: Pre) -> BuiltTx:
    return _shift_interest(p, -1)


def case_accrue_a_period_not_ended(p: Pre) -> BuiltTx:
    return accrue(p, period=5).built


def case_accrue_period_zero_is_malformed(p: Pre) -> BuiltTx:
    return accrue(p, period=0).built


def case_repay_by_someone_else(p: Pre) -> BuiltTx:
    w = p.world
    # bob has no inputs (these are alice's): NOT_LOAN_PARTY comes before the inputs
    return repay(p, 10, signer=w.bob).built


def case_accrue_by_another_bank(p: Pre) -> BuiltTx:
    return accrue(p, signer=p.world.bank_b).built


def case_repay_signed_by_mallory(p: Pre) -> Tx:
    honest = repay(p, 10).built.tx
    forged = p.world.mallory.identity.sign(honest.kind, p.world.chain_id, honest.body)
    return dataclasses.replace(honest, signature=forged)


def case_consent_by_someone_else(p: Pre) -> Tx:
    w = p.world
    honest = originate(w, p.funds, consent_nonce=2)
    body = LoanOriginateBody.decode(honest.built.tx.body)
    bad = dataclasses.replace(body, borrower_consent=sign_consent(w.bob.identity, w.chain_id, body))
    return _resign_originate(p, bad)


def _resign_originate(p: Pre, body: LoanOriginateBody) -> Tx:
    # The excess proof is over the tx id, which changes with the body: keep the old
    # witness, so only the consent (checked first) decides.
    honest_kind = b"veil/tx/loan_originate/v1"
    signature = p.world.bank_a.identity.sign(honest_kind, p.world.chain_id, body.encode())
    return Tx(honest_kind, body.encode(), signature, bytes(64))


def case_missing_consent(p: Pre) -> Tx:
    body = LoanOriginateBody.decode(originate(p.world, p.funds, consent_nonce=2).built.tx.body)
    return _resign_originate(p, dataclasses.replace(body, borrower_consent=bytes(64)))


def case_consent_for_another_amount(p: Pre) -> Tx:
    w = p.world
    small = LoanOriginateBody.decode(
        originate(w, p.funds, consent_nonce=2, amount=10).built.tx.body
    )
    big = LoanOriginateBody.decode(
        originate(w, p.funds, consent_nonce=2, amount=9_000).built.tx.body
    )
    return _resign_originate(p, dataclasses.replace(big, borrower_consent=small.borrower_consent))


def case_consent_replayed(p: Pre) -> BuiltTx:
    w = p.world
    funds = w.issue(w.bank_a, USD, [w.bank_a.plan(2_000)])
    w.commit(p.store, [funds])
    return originate(w, funds, consent_nonce=1).built  # nonce 1 made the fixture's loan


def case_origination_replayed(p: Pre) -> BuiltTx:
    return p.loan


def case_unknown_loan_repay(p: Pre) -> BuiltTx:
    return repay(
        dataclasses.replace(p, loan=dataclasses.replace(p.loan, tx_id=b"\x07" * 32)), 10
    ).built


def case_unknown_loan_close(p: Pre) -> BuiltTx:
    zero = Opening(0, 5, USD)
    w = p.world
    return build_close(w.alice.identity, w.chain_id, loan_id=b"\x07" * 32, outstanding=zero)


def case_unknown_loan_accrue(p: Pre) -> BuiltTx:
    return accrue(p, loan_id=b"\x07" * 32).built


def case_lender_lends_to_itself(p: Pre) -> Tx:
    body = LoanOriginateBody.decode(p.loan.tx.body)
    return _resign_originate(p, dataclasses.replace(body, borrower=p.world.bank_a.key))


def case_rate_above_100_percent(p: Pre) -> Tx:
    body = LoanOriginateBody.decode(p.loan.tx.body)
    terms = dataclasses.replace(TERMS, rate_bps=10_001)
    return _resign_originate(p, dataclasses.replace(body, terms=terms))


TxCase = Callable[[Pre], BuiltTx | Tx]
LOAN_CASES: list[tuple[TxCase, Reason]] = [
    (case_overpayment_by_one, Reason.BAD_RANGE_PROOF),
    (case_close_with_a_balance, Reason.LOAN_NOT_SETTLED),
    (case_interest_one_unit_more, Reason.BAD_RANGE_PROOF),
    (case_interest_one_unit_less, Reason.BAD_RANGE_PROOF),
    (case_accrue_a_period_not_ended, Reason.ACCRUAL_NOT_DUE),
    (case_accrue_period_zero_is_malformed, Reason.MALFORMED),
    (case_repay_by_someone_else, Reason.NOT_LOAN_PARTY),
    (case_accrue_by_another_bank, Reason.NOT_LOAN_PARTY),
    (case_repay_signed_by_mallory, Reason.BAD_SIGNATURE),
    (case_consent_by_someone_else, Reason.BAD_CONSENT),
    (case_missing_consent, Reason.BAD_CONSENT),
    (case_consent_for_another_amount, Reason.BAD_CONSENT),
    (case_consent_replayed, Reason.REPLAYED),
    (case_origination_replayed, Reason.DUPLICATE_TX),
    (case_unknown_loan_repay, Reason.UNKNOWN_LOAN),
    (case_unknown_loan_accrue, Reason.UNKNOWN_LOAN),
    (case_unknown_loan_close, Reason.UNKNOWN_LOAN),
    (case_lender_lends_to_itself, Reason.MALFORMED),
    (case_rate_above_100_percent, Reason.MALFORMED),
]
LOAN_CASE_REASONS = {reason for _, reason in LOAN_CASES} | {
    Reason.LOAN_CLOSED,
    Reason.ACCRUAL_NOT_DUE,
}


@pytest.mark.parametrize(
    ("make", "reason"), LOAN_CASES, ids=[c.__name__[5:] for c, _ in LOAN_CASES]
)
def test_invalid_loan_tx(pre: Pre, make: TxCase, reason: Reason) -> None:
    reject(pre, make(pre), reason)


def test_accrue_twice_in_a_period_and_everything_on_a_closed_loan() -> None:
    p = setup()
    w = p.world
    first = accrue(p)
    w.commit(p.store, [first.built])
    second = accrue(p, outstanding=first.outstanding)
    reject(p, second.built, Reason.ACCRUAL_NOT_DUE)
    paid = repay(p, first.outstanding.value, outstanding=first.outstanding)
    w.commit(p.store, [paid.built])
    close = build_close(
        w.alice.identity, w.chain_id, loan_id=p.loan.tx_id, outstanding=paid.outstanding
    )
    w.commit(p.store, [close])
    assert get_loan(p.store, p.loan.tx_id).closed  # type: ignore[union-attr]
    p2 = dataclasses.replace(p, principal=paid.outstanding)
    reject(p, accrue(p2, period=2).built, Reason.LOAN_CLOSED)
    reject(
        p,
        build_close(
            w.alice.identity, w.chain_id, loan_id=p.loan.tx_id, outstanding=paid.outstanding
        ),
        Reason.DUPLICATE_TX,  # a close body is (borrower, loan): its replay is the same tx
    )
    reject(
        p,
        build_close(w.bob.identity, w.chain_id, loan_id=p.loan.tx_id, outstanding=paid.outstanding),
        Reason.LOAN_CLOSED,
    )
    change = (paid.built.output_ids()[1], paid.built.openings[1])
    again = repay(p, 0, outstanding=paid.outstanding, inputs=[change])
    reject(p, again.built, Reason.LOAN_CLOSED)


def test_valid_lifecycle_keeps_outstanding_in_the_auditors_view() -> None:
    """originate, accrue, repay, accrue, repay all, close: at every step the auditor's
    memo opens the loan's outstanding commitment, to principal + interest − repaid."""
    p = setup()
    w = p.world
    expected = PRINCIPAL
    opening = p.principal
    inputs = [w.spend(p.funds, 1)]
    for step in ("accrue", "repay", "accrue", "repay_all"):
        if step == "accrue":
            period = get_loan(p.store, p.loan.tx_id).accrued_periods + 1  # type: ignore[union-attr]
            built = accrue(p, period=period, outstanding=opening)
            expected += interest_for(expected, TERMS.rate_bps)
            body = LoanAccrueBody.decode(built.built.tx.body)
            interest = open_memo(body.memos.audit_memo, w.auditor.memo_private, body.interest)
            assert interest.value == interest_for(opening.value, TERMS.rate_bps)
        else:
            amount = 300 if step == "repay" else opening.value
            built = repay(p, amount, outstanding=opening, inputs=inputs)
            expected -= amount
            inputs = [(built.built.output_ids()[1], built.built.openings[1])]
        w.commit(p.store, [built.built])
        opening = built.outstanding
        loan = get_loan(p.store, p.loan.tx_id)
        assert loan is not None and loan.outstanding == opening.commitment()
        assert opening.value == expected
    assert expected == 0
    w.commit(
        p.store,
        [build_close(w.alice.identity, w.chain_id, loan_id=p.loan.tx_id, outstanding=opening)],
    )
    [(loan_id, record)] = loans_of(p.store, w.alice.key)
    assert (
        loan_id == p.loan.tx_id and record.closed and record.principal == p.principal.commitment()
    )


def test_valid_origination_records_terms_index_and_memos(pre: Pre) -> None:
    w = pre.world
    loan = get_loan(pre.store, pre.loan.tx_id)
    assert loan is not None and loan.terms == TERMS and loan.borrower == w.alice.key
    assert loan.principal == loan.outstanding == pre.principal.commitment()
    assert not loan.overdue(TERMS.maturity_height) and loan.overdue(TERMS.maturity_height + 1)
    body = LoanOriginateBody.decode(pre.loan.tx.body)
    for memo, party in (
        (body.principal_memos.lender_memo, w.bank_a),
        (body.principal_memos.borrower_memo, w.alice),
        (body.principal_memos.audit_memo, w.auditor),
    ):
        assert open_memo(memo, party.memo_private, loan.outstanding).value == PRINCIPAL
    assert [lid for lid, _ in loans_of(pre.store, w.alice.key)] == [pre.loan.tx_id]
    assert loans_of(pre.store, w.bob.key) == []


def test_loan_cases_outnumber_valid_ones() -> None:
    valid = [n for n in globals() if n.startswith("test_valid_")]
    assert len(LOAN_CASES) > 3 * len(valid)


def _second_repay(p: Pre, amount: int) -> BuiltTx:
    """A repay of ``amount`` out of the disbursement, proven against the principal."""
    return repay(p, amount, inputs=[(p.loan.output_ids()[0], p.loan.openings[0])]).built


def test_execute_keeps_a_repay_whose_statement_failed_only_because_of_an_earlier_bad_one(
    pre: Pre,
) -> None:
    """[overpayment, honest repay proven against the principal]: in the first pass the
    honest repay's C_out − C_pay sits on top of the overpayment and fails too; only
    the overpayment is left out, and the honest repay is judged again without it."""
    bad = case_overpayment_by_one(pre)
    honest = _second_repay(pre, 100)
    executed = pre.world.execute(pre.store, [bad, honest])
    assert [(r.index_in_batch, r.reason) for r in executed.rejected] == [
        (0, Reason.BAD_RANGE_PROOF)
    ]
    assert executed.block.txs == (honest.tx,)
    apply_block(pre.store, executed.block, pre.world.genesis)


def test_a_block_maps_a_bad_derived_statement_to_its_tx(pre: Pre) -> None:
    block = raw_block(
        pre.world, pre.store, [_second_repay(pre, 100), case_interest_one_unit_more(pre)]
    )
    with pytest.raises(BlockRejected) as info:
        apply_block(pre.store, block, pre.world.genesis)
    assert info.value.reason is Reason.BAD_RANGE_PROOF and info.value.index == 1
