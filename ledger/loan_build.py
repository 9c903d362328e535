"""Building the four loan txs (the lender's and the borrower's side of docs/loans.md).

Each builder returns the signed tx and the opening(s) its signer must keep:
the new outstanding opening (value and blinding) after every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from ledger.build import (
    BuiltTx,
    OutputPlan,
    SealedOutputs,
    is_power_of_two_count,
    seal_outputs,
    sign_tx,
)
from ledger.identity import SigningIdentity
from ledger.loans import (
    ACCRUAL_LABEL,
    OUTSTANDING_LABEL,
    accrual_commitments,
    consent_payload,
    interest_for,
)
from ledger.tx import (
    MAX_OUTPUTS,
    RANGE_BITS,
    TAG_LOAN_CONSENT,
    TAG_OF,
    LoanAccrueBody,
    LoanCloseBody,
    LoanMemos,
    LoanOriginateBody,
    LoanRepayBody,
    LoanTerms,
    Tx,
    tx_id_of,
)
from privacy import group
from privacy.memo import Opening, seal_memo
from privacy.rangeproof import prove_range
from privacy.sigma import prove_commitment_to_zero


@dataclass(frozen=True, slots=True)
class LoanKeys:
    """Where a loan's memos go: the lender's, the borrower's and the auditor's X25519 keys."""

    lender_memo_key: bytes
    borrower_memo_key: bytes
    auditor_memo_key: bytes


@dataclass(frozen=True, slots=True)
class BuiltLoanTx:
    built: BuiltTx
    outstanding: Opening = field(repr=False)
    """The loan's outstanding opening after this tx: a secret."""


def seal_loan_memos(opening: Opening, keys: LoanKeys) -> LoanMemos:
    return LoanMemos(
        seal_memo(opening, keys.lender_memo_key),
        seal_memo(opening, keys.borrower_memo_key),
        seal_memo(opening, keys.auditor_memo_key),
    )


def _pad(plans: list[OutputPlan], owner: bytes, memo_key: bytes) -> list[OutputPlan]:
    while not is_power_of_two_count(len(plans)):
        if len(plans) >= MAX_OUTPUTS:
            raise ValueError(f"at most {MAX_OUTPUTS} outputs")
        plans.append(OutputPlan(owner, memo_key, 0))
    return plans


def _change_plans(
    first: OutputPlan, inputs: Sequence[tuple[bytes, Opening]], signer: bytes, memo_key: bytes
) -> list[OutputPlan]:
    total = sum(opening.value for _, opening in inputs)
    if total < first.value:
        raise ValueError(f"inputs hold {total}, need {first.value}")
    return _pad([first, OutputPlan(signer, memo_key, total - first.value)], signer, memo_key)


def _seal_balanced(
    plans: Sequence[OutputPlan],
    inputs: Sequence[tuple[bytes, Opening]],
    asset: bytes,
    auditor: bytes,
) -> tuple[SealedOutputs, int]:
    r_in = sum(opening.blinding for _, opening in inputs)
    while True:
        sealed = seal_outputs(plans, asset, auditor)
        excess = (r_in - sum(o.blinding for o in sealed.openings)) % group.ORDER
        if excess:
            return sealed, excess


def sign_consent(borrower: SigningIdentity, chain_id: bytes, body: LoanOriginateBody) -> bytes:
    """The borrower's consent over the terms, the disbursement commitment and its nonce."""
    return borrower.sign(TAG_LOAN_CONSENT, chain_id, consent_payload(body))


@dataclass(frozen=True, slots=True)
class LoanOffer:
    """The lender's side of an origination before the borrower consents.

    ``body`` has an all-zero ``borrower_consent``; the borrower signs it
    (``sign_consent``) and the lender finishes with ``complete_origination``.
    ``excess_blinding`` and ``openings`` are the lender's secrets: they stay with it.
    """

    body: LoanOriginateBody
    excess_blinding: int = field(repr=False)
    openings: tuple[Opening, ...] = field(repr=False)

    @property
    def principal(self) -> Opening:
        return self.openings[0]


NO_CONSENT: Final = bytes(64)


def build_offer(
    lender: SigningIdentity,
    *,
    borrower: bytes,
    asset: bytes,
    amount: int,
    terms: LoanTerms,
    inputs: Sequence[tuple[bytes, Opening]],
    keys: LoanKeys,
    consent_nonce: int,
) -> LoanOffer:
    """The disbursement of ``amount`` to ``borrower`` (output 0) and the change, funded
    by ``inputs``, with the principal memos; not yet consented to nor signed."""
    first = OutputPlan(borrower, keys.borrower_memo_key, amount)
    plans = _change_plans(first, inputs, lender.public_key, keys.lender_memo_key)
    sealed, excess = _seal_balanced(plans, inputs, asset, keys.auditor_memo_key)
    body = LoanOriginateBody(
        lender.public_key,
        borrower,
        asset,
        terms,
        tuple(oid for oid, _ in inputs),
        sealed.outputs,
        sealed.range_proof,
        seal_loan_memos(sealed.openings[0], keys),
        consent_nonce,
        NO_CONSENT,
    )
    return LoanOffer(body, excess, tuple(sealed.openings))


def complete_origination(
    lender: SigningIdentity, chain_id: bytes, offer: LoanOffer, consent: bytes
) -> BuiltLoanTx:
    """The signed ``loan_originate`` of ``offer`` with the borrower's ``consent``."""
    body = dataclasses.replace(offer.body, borrower_consent=consent)
    built = sign_tx(lender, body, chain_id, excess_blinding=offer.excess_blinding)
    return BuiltLoanTx(BuiltTx(built.tx, built.tx_id, offer.openings), offer.principal)


def build_originate(
    lender: SigningIdentity,
    borrower: SigningIdentity,
    chain_id: bytes,
    *,
    asset: bytes,
    amount: int,
    terms: LoanTerms,
    inputs: Sequence[tuple[bytes, Opening]],
    keys: LoanKeys,
    consent_nonce: int,
) -> BuiltLoanTx:
    """Offer and consent in one place (the CLI splits them: offer, accept, originate)."""
    offer = build_offer(
        lender,
        borrower=borrower.public_key,
        asset=asset,
        amount=amount,
        terms=terms,
        inputs=inputs,
        keys=keys,
        consent_nonce=consent_nonce,
    )
    consent = sign_consent(borrower, chain_id, offer.body)
    return complete_origination(lender, chain_id, offer, consent)


def build_repay(
    borrower: SigningIdentity,
    chain_id: bytes,
    *,
    loan_id: bytes,
    lender: bytes,
    asset: bytes,
    amount: int,
    outstanding: Opening,
    inputs: Sequence[tuple[bytes, Opening]],
    keys: LoanKeys,
) -> BuiltLoanTx:
    """Pay ``amount`` of the loan; raises ``ValueError`` for an overpayment (no proof exists)."""
    first = OutputPlan(lender, keys.lender_memo_key, amount)
    plans = _change_plans(first, inputs, borrower.public_key, keys.borrower_memo_key)
    sealed, excess = _seal_balanced(plans, inputs, asset, keys.auditor_memo_key)
    payment: Opening = sealed.openings[0]
    if amount > outstanding.value:
        raise ValueError(f"repaying {amount} overpays an outstanding {outstanding.value}")
    remaining = Opening(
        outstanding.value - amount,
        (outstanding.blinding - payment.blinding) % group.ORDER,
        asset,
    )
    proof, _ = prove_range(
        [remaining.value], [remaining.blinding], RANGE_BITS, label=OUTSTANDING_LABEL
    )
    body = LoanRepayBody(
        borrower.public_key,
        loan_id,
        asset,
        tuple(oid for oid, _ in inputs),
        sealed.outputs,
        sealed.range_proof,
        proof,
        seal_loan_memos(remaining, keys),
    )
    built = sign_tx(borrower, body, chain_id, excess_blinding=excess)
    openings = sealed.openings
    return BuiltLoanTx(BuiltTx(built.tx, built.tx_id, openings), remaining)


def accrual_openings(
    outstanding: Opening, interest: int, interest_blinding: int, rate_bps: int
) -> tuple[list[int], list[int]]:
    """(values, blindings) of ``accrual_commitments``: the prover's side of the algebra."""
    v, r = outstanding.value, outstanding.blinding
    values = [
        rate_bps * v - 10_000 * interest,
        10_000 * interest + 9_999 - rate_bps * v,
        interest,
        v + interest,
    ]
    blindings = [
        (rate_bps * r - 10_000 * interest_blinding) % group.ORDER,
        (10_000 * interest_blinding - rate_bps * r) % group.ORDER,
        interest_blinding,
        (r + interest_blinding) % group.ORDER,
    ]
    return values, blindings


def build_accrue(
    lender: SigningIdentity,
    chain_id: bytes,
    *,
    loan_id: bytes,
    period: int,
    rate_bps: int,
    outstanding: Opening,
    keys: LoanKeys,
    interest: int | None = None,
) -> BuiltLoanTx:
    """Accrue one period's interest ⌊v·rate/10000⌋ (``interest`` overrides it, for tests:
    any other value has no valid proof and ``prove_range`` refuses it)."""
    value = interest_for(outstanding.value, rate_bps) if interest is None else interest
    r_i = group.random_scalar()
    values, blindings = accrual_openings(outstanding, value, r_i, rate_bps)
    proof, commitments = prove_range(values, blindings, RANGE_BITS, label=ACCRUAL_LABEL)
    c_i = commitments[2]
    if accrual_commitments(outstanding.commitment(), c_i, rate_bps) != commitments:
        raise ValueError("the outstanding opening does not open the loan's commitment")
    opening_i = Opening(value, r_i, outstanding.asset)
    body = LoanAccrueBody(
        lender.public_key, loan_id, period, c_i, proof, seal_loan_memos(opening_i, keys)
    )
    built = sign_tx(lender, body, chain_id)
    new = Opening(outstanding.value + value, blindings[3], outstanding.asset)
    return BuiltLoanTx(built, new)


def build_close(
    borrower: SigningIdentity, chain_id: bytes, *, loan_id: bytes, outstanding: Opening
) -> BuiltTx:
    """Close a loan whose outstanding opens to zero (the proof fails otherwise)."""
    body = LoanCloseBody(borrower.public_key, loan_id)
    kind = TAG_OF[LoanCloseBody]
    body_bytes = body.encode()
    tx_id = tx_id_of(kind, body_bytes, chain_id)
    commitment = outstanding.commitment()
    witness = prove_commitment_to_zero(outstanding.blinding, commitment, tx_id)
    signature = borrower.sign(kind, chain_id, body_bytes)
    return BuiltTx(Tx(kind, body_bytes, signature, witness), tx_id)
