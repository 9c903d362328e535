"""Confidential loans: the ``LoanRecord``, the rules of the four loan kinds, and the
commitments validators derive from the state (docs/loans.md has the algebra).

Notation (``G`` values, ``H`` blindings, all commitments ``v·G + r·H``):

* ``C_out``: the loan's outstanding commitment; at origination the disbursement
  output's commitment (also kept as ``principal``).
* repay: ``C_out' = C_out − C_pay``; range proof that ``C_out'`` is in [0, 2^64).
* accrue: ``C_I`` with one aggregated range proof over ``accrual_commitments``:
  ``rate·C_out − 10000·C_I``, ``10000·C_I + 9999·G − rate·C_out``, ``C_I`` and
  ``C_out + C_I``. Then ``I = ⌊v·rate / 10000⌋`` exactly and ``C_out' = C_out + C_I``.
* close: a Schnorr proof on ``H`` over the tx id that ``C_out = r·H``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from ledger.codec import U8, U64, Bytes32, Record
from ledger.identity import verify_signature
from ledger.invariants import invariant
from ledger.reasons import Reason, TxRejected
from ledger.rules import (
    Receipt,
    add_excess,
    check_nonce,
    check_owners,
    create_outputs,
    get_asset,
    get_clock,
    is_registered,
    owned_input_commitments,
    require_member,
    spend_inputs,
    sum_points,
)
from ledger.state import NS_BORROWER, NS_LOAN, StateReader, StateView, state_key
from ledger.tx import (
    RANGE_BITS,
    TAG_LOAN_CONSENT,
    DecodedTx,
    LoanAccrueBody,
    LoanCloseBody,
    LoanConsent,
    LoanMemos,
    LoanOriginateBody,
    LoanRepayBody,
    LoanTerms,
)
from privacy import group
from privacy.memo import MAX_MEMO_BYTES, MIN_MEMO_BYTES
from privacy.rangeproof import RangeStatement
from privacy.sigma import verify_commitment_to_zero, verify_excess

BPS_DENOMINATOR: Final = 10_000
MAX_RATE_BPS: Final = 10_000
"""At most 100 % per period: keeps rate·v below 2^78, far under the group order."""
OUTSTANDING_LABEL: Final = b"veil/loan/outstanding/v1"
ACCRUAL_LABEL: Final = b"veil/loan/accrual/v1"
STATUS_ACTIVE: Final = 0
STATUS_CLOSED: Final = 1


@dataclass(frozen=True, slots=True)
class LoanRecord(Record):
    """A loan as the state keeps it. The id is the originating tx id (the state key)."""

    lender: Bytes32
    borrower: Bytes32
    asset: Bytes32
    terms: LoanTerms
    principal: Bytes32
    outstanding: Bytes32
    status: U8
    originated_height: U64
    accrued_periods: U64
    closed_height: U64
    """0 while active."""

    @property
    def closed(self) -> bool:
        return self.status == STATUS_CLOSED

    def overdue(self, height: int) -> bool:
        """Past maturity and not closed: public, while the amount stays hidden."""
        return not self.closed and height > self.terms.maturity_height

    def active_at(self, height: int) -> bool:
        """Originated by ``height`` and not closed by then (as far as this record says)."""
        return self.originated_height <= height and (not self.closed or self.closed_height > height)


def get_loan(state: StateReader, loan_id: bytes) -> LoanRecord | None:
    raw = state.get_state(state_key(NS_LOAN, loan_id))
    return None if raw is None else LoanRecord.decode(raw)


def loans_of(state: StateReader, borrower: bytes) -> list[tuple[bytes, LoanRecord]]:
    """Every loan ever originated to ``borrower``, by loan id, from the state's index.

    Complete by construction: every origination writes the index entry, and
    entries are never removed (closed loans stay, with their status).
    """
    prefix = state_key(NS_BORROWER, borrower)
    loans = []
    for key, _ in state.iter_state(prefix):
        loan_id = key[len(prefix) :]
        record = get_loan(state, loan_id)
        invariant(record is not None, f"the borrower index names a missing loan {loan_id.hex()}")
        if record is not None:
            loans.append((loan_id, record))
    return loans


def current_height(view: StateReader) -> int:
    """The height of the block being applied: the clock holds its parent's."""
    clock = get_clock(view)
    return 1 if clock is None else clock.height + 1


# --- the derived commitments (validators and provers compute the same) -------------


def repaid_outstanding(outstanding: bytes, payment: bytes) -> bytes:
    """``C_out − C_pay``."""
    return group.sub(outstanding, payment)


def accrual_commitments(outstanding: bytes, interest: bytes, rate_bps: int) -> tuple[bytes, ...]:
    """The four commitments the accrual proof shows in [0, 2^64)::

        A = rate·C_out − 10000·C_I           opens to rate·v − 10000·I     (rate·r − 10000·r_I)
        B = 10000·C_I + 9999·G − rate·C_out  opens to 10000·I + 9999 − rate·v
        C_I                                  opens to I
        C_out + C_I                          opens to v + I (the new outstanding)

    A + B = 9999·G, so a, b ∈ [0, 2^64) forces a ∈ [0, 9999]; with I < 2^64 and
    rate·v < 2^78 the equation 10000·I = rate·v − a holds over the integers,
    i.e. I = ⌊rate·v / 10000⌋ (docs/loans.md).
    """
    scaled_out = group.mul(rate_bps, outstanding)
    scaled_interest = group.mul(BPS_DENOMINATOR, interest)
    lower = group.sub(scaled_out, scaled_interest)
    upper = group.sub(group.add(scaled_interest, group.mul_base(BPS_DENOMINATOR - 1)), scaled_out)
    return (lower, upper, interest, group.add(outstanding, interest))


def interest_for(value: int, rate_bps: int) -> int:
    """I = ⌊v·rate / 10000⌋: the only interest an accrual can prove."""
    return value * rate_bps // BPS_DENOMINATOR


# --- stateless ------------------------------------------------------------------------


def _check_memos(memos: LoanMemos) -> None:
    for name, memo in (
        ("lender", memos.lender_memo),
        ("borrower", memos.borrower_memo),
        ("audit", memos.audit_memo),
    ):
        if not MIN_MEMO_BYTES <= len(memo) <= MAX_MEMO_BYTES:
            raise TxRejected(Reason.MALFORMED, f"loan {name} memo of {len(memo)} bytes")


def _check_terms(terms: LoanTerms) -> None:
    if terms.rate_bps > MAX_RATE_BPS:
        raise TxRejected(Reason.MALFORMED, f"rate of {terms.rate_bps} bps > {MAX_RATE_BPS}")
    if terms.period_blocks == 0:
        raise TxRejected(Reason.MALFORMED, "a period is at least one block")


def check_loan_structure(
    body: LoanOriginateBody | LoanRepayBody | LoanAccrueBody | LoanCloseBody,
) -> None:
    """Structure a loan tx must have, before any signature is checked."""
    if isinstance(body, LoanOriginateBody):
        _check_terms(body.terms)
        _check_memos(body.principal_memos)
        if body.lender == body.borrower:
            raise TxRejected(Reason.MALFORMED, "a lender does not lend to itself")
        if body.outputs[0].owner != body.borrower:
            raise TxRejected(Reason.MALFORMED, "output 0 is the disbursement to the borrower")
    elif isinstance(body, LoanRepayBody):
        _check_memos(body.memos)
    elif isinstance(body, LoanAccrueBody):
        _check_memos(body.memos)
        if not group.is_valid_point(body.interest):
            raise TxRejected(Reason.BAD_COMMITMENT, "the interest commitment is not a point")
        if body.period == 0:
            raise TxRejected(Reason.MALFORMED, "periods count from 1")


def consent_payload(body: LoanOriginateBody) -> bytes:
    """What the borrower signs under ``TAG_LOAN_CONSENT``."""
    return LoanConsent(
        body.lender,
        body.borrower,
        body.asset,
        body.terms,
        body.outputs[0].commitment,
        body.consent_nonce,
    ).encode()


def check_consent(body: LoanOriginateBody, chain_id: bytes) -> None:
    if not verify_signature(
        body.borrower, TAG_LOAN_CONSENT, chain_id, consent_payload(body), body.borrower_consent
    ):
        raise TxRejected(
            Reason.BAD_CONSENT, "the borrower did not sign these terms and this disbursement"
        )


# --- stateful -------------------------------------------------------------------------


def _live_loan(view: StateView, loan_id: bytes, signer: bytes, *, lender: bool) -> LoanRecord:
    """The loan, if it exists, is active, and ``signer`` is its lender (or borrower)."""
    loan = get_loan(view, loan_id)
    if loan is None:
        raise TxRejected(Reason.UNKNOWN_LOAN, f"loan {loan_id.hex()[:16]}")
    if loan.closed:
        raise TxRejected(Reason.LOAN_CLOSED, f"loan {loan_id.hex()[:16]} is closed")
    if signer != (loan.lender if lender else loan.borrower):
        raise TxRejected(Reason.NOT_LOAN_PARTY, "the signer is not this loan's party for this tx")
    return loan


def _put_loan(view: StateView, loan_id: bytes, loan: LoanRecord) -> None:
    view.put(state_key(NS_LOAN, loan_id), loan.encode())


def _with(loan: LoanRecord, **changes: Any) -> LoanRecord:
    return dataclasses.replace(loan, **changes)


def _apply_originate(view: StateView, dtx: DecodedTx, body: LoanOriginateBody) -> Receipt:
    require_member(view, body.lender)
    if not is_registered(view, body.borrower):
        raise TxRejected(Reason.UNREGISTERED, "the borrower is not a registered account")
    asset = get_asset(view, body.asset)
    if asset is None:
        raise TxRejected(Reason.UNKNOWN_ASSET, f"asset {body.asset.hex()[:16]}")
    inputs = owned_input_commitments(view, body.lender, body.asset, body.inputs)
    check_owners(view, body.outputs)
    excess = group.sub(sum_points(inputs), sum_points(o.commitment for o in body.outputs))
    if excess == group.IDENTITY or not verify_excess(excess, dtx.tx_id, dtx.tx.witness):
        raise TxRejected(Reason.UNBALANCED, "Σ inputs − Σ outputs is not a proven x·H")
    check_nonce(view, body.borrower, body.consent_nonce)  # one consent, one loan
    spent = spend_inputs(view, dtx.tx_id, body.lender, body.inputs)
    add_excess(view, body.asset, asset, excess, 0)
    created = create_outputs(view, dtx, body.asset, body.outputs)
    height = current_height(view)
    disbursement = body.outputs[0].commitment
    loan = LoanRecord(
        body.lender,
        body.borrower,
        body.asset,
        body.terms,
        disbursement,
        disbursement,
        STATUS_ACTIVE,
        height,
        0,
        0,
    )
    _put_loan(view, dtx.tx_id, loan)
    view.put(state_key(NS_BORROWER, body.borrower + dtx.tx_id), height.to_bytes(8, "big"))
    return Receipt(dtx.tx_id, dtx.kind, created=created, spent=spent)


def _apply_repay(view: StateView, dtx: DecodedTx, body: LoanRepayBody) -> Receipt:
    loan = _live_loan(view, body.loan_id, body.borrower, lender=False)
    if body.asset != loan.asset:
        raise TxRejected(Reason.WRONG_ASSET, "a repayment is in the loan's asset")
    if body.outputs[0].owner != loan.lender:
        raise TxRejected(Reason.MALFORMED, "output 0 is the payment to the lender")
    asset = get_asset(view, body.asset)
    if asset is None:
        raise TxRejected(Reason.UNKNOWN_ASSET, f"asset {body.asset.hex()[:16]}")
    inputs = owned_input_commitments(view, body.borrower, body.asset, body.inputs)
    check_owners(view, body.outputs)
    excess = group.sub(sum_points(inputs), sum_points(o.commitment for o in body.outputs))
    if excess == group.IDENTITY or not verify_excess(excess, dtx.tx_id, dtx.tx.witness):
        raise TxRejected(Reason.UNBALANCED, "Σ inputs − Σ outputs is not a proven x·H")
    spent = spend_inputs(view, dtx.tx_id, body.borrower, body.inputs)
    add_excess(view, body.asset, asset, excess, 0)
    created = create_outputs(view, dtx, body.asset, body.outputs)
    remaining = repaid_outstanding(loan.outstanding, body.outputs[0].commitment)
    _put_loan(view, body.loan_id, _with(loan, outstanding=remaining))
    statement = RangeStatement(
        (remaining,), body.outstanding_proof, RANGE_BITS, label=OUTSTANDING_LABEL
    )
    return Receipt(dtx.tx_id, dtx.kind, created=created, spent=spent, range_statements=(statement,))


def _apply_accrue(view: StateView, dtx: DecodedTx, body: LoanAccrueBody) -> Receipt:
    loan = _live_loan(view, body.loan_id, body.lender, lender=True)
    if body.period != loan.accrued_periods + 1:
        raise TxRejected(
            Reason.ACCRUAL_NOT_DUE,
            f"period {body.period}: the next period to accrue is {loan.accrued_periods + 1}",
        )
    ends = loan.originated_height + body.period * loan.terms.period_blocks
    if current_height(view) < ends:
        raise TxRejected(Reason.ACCRUAL_NOT_DUE, f"period {body.period} ends at height {ends}")
    derived = accrual_commitments(loan.outstanding, body.interest, loan.terms.rate_bps)
    _put_loan(view, body.loan_id, _with(loan, outstanding=derived[3], accrued_periods=body.period))
    statement = RangeStatement(derived, body.proof, RANGE_BITS, label=ACCRUAL_LABEL)
    return Receipt(dtx.tx_id, dtx.kind, range_statements=(statement,))


def _apply_close(view: StateView, dtx: DecodedTx, body: LoanCloseBody) -> Receipt:
    loan = _live_loan(view, body.loan_id, body.borrower, lender=False)
    if not verify_commitment_to_zero(loan.outstanding, dtx.tx_id, dtx.tx.witness):
        raise TxRejected(Reason.LOAN_NOT_SETTLED, "no proof that the outstanding balance is zero")
    closed = _with(loan, status=STATUS_CLOSED, closed_height=current_height(view))
    _put_loan(view, body.loan_id, closed)
    return Receipt(dtx.tx_id, dtx.kind)


def apply_loan_tx(
    view: StateView,
    dtx: DecodedTx,
    body: LoanOriginateBody | LoanRepayBody | LoanAccrueBody | LoanCloseBody,
) -> Receipt:
    """Stateful checks and writes of a loan tx (``ledger.rules.apply_tx`` calls this)."""
    if isinstance(body, LoanOriginateBody):
        return _apply_originate(view, dtx, body)
    if isinstance(body, LoanRepayBody):
        return _apply_repay(view, dtx, body)
    if isinstance(body, LoanAccrueBody):
        return _apply_accrue(view, dtx, body)
    return _apply_close(view, dtx, body)
