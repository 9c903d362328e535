"""Loans in the wallet's and the auditor's scans: follow each loan's outstanding
opening through its memos, block by block, and flag a memo that lies.

``LoanTracker(role, memo_private_key)`` reads the memo meant for its role
(lender, borrower or auditor). For an accrual it recomputes
I = ⌊v·rate / 10 000⌋ from the opening it holds and flags the memo if it does not
open C_I to exactly that (``BAD_INTEREST_MEMO``): the chain has already proven
C_I correct, so such a memo is the lender's lie about the amount, not a wrong
interest. ``totals()`` gives the auditor's outstanding per (lender, asset) and
per borrower.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from ledger.block import Block
from ledger.loans import interest_for, repaid_outstanding
from ledger.tx import (
    BODY_TYPES,
    LoanAccrueBody,
    LoanCloseBody,
    LoanMemos,
    LoanOriginateBody,
    LoanRepayBody,
    LoanTerms,
    tx_id_of,
)
from privacy import group
from privacy.memo import MemoError, Opening, try_open_memo

Role = Literal["lender", "borrower", "auditor"]
BAD_MEMO: Final = "BAD_LOAN_MEMO"
BAD_INTEREST_MEMO: Final = "BAD_INTEREST_MEMO"


@dataclass(slots=True)
class TrackedLoan:
    lender: bytes
    borrower: bytes
    asset: bytes
    terms: LoanTerms
    outstanding: Opening | None = field(repr=False)
    """None once a memo failed: the value is unknown from then on."""
    closed: bool = False


@dataclass(frozen=True, slots=True)
class LoanFlag:
    loan_id: bytes
    tx_id: bytes
    reason: str


def _memo_for(memos: LoanMemos, role: Role) -> bytes:
    if role == "lender":
        return memos.lender_memo
    if role == "borrower":
        return memos.borrower_memo
    return memos.audit_memo


class LoanTracker:
    def __init__(self, role: Role, memo_private_key: bytes, party: bytes | None = None) -> None:
        """``party``: only loans where this key is the party of ``role`` (a bank's wallet
        tracks its loans as lender with one tracker and as borrower with another); the
        auditor passes ``None``: every loan."""
        self.role = role
        self._key = memo_private_key
        self._party = party
        self.loans: dict[bytes, TrackedLoan] = {}
        self.flags: list[LoanFlag] = []

    def _open(self, memos: LoanMemos, commitment: bytes) -> Opening | None:
        try:
            return try_open_memo(_memo_for(memos, self.role), self._key, commitment)
        except MemoError:
            return None

    def _flag(self, loan_id: bytes, tx_id: bytes, reason: str) -> None:
        self.flags.append(LoanFlag(loan_id, tx_id, reason))

    def scan(self, block: Block, chain_id: bytes) -> None:
        for tx in block.txs:
            body_type = BODY_TYPES.get(tx.kind)
            if body_type not in (LoanOriginateBody, LoanRepayBody, LoanAccrueBody, LoanCloseBody):
                continue
            body = body_type.decode(tx.body)  # a committed block holds only valid txs
            self._apply(tx_id_of(tx.kind, tx.body, chain_id), body)

    def scan_all(self, blocks: Iterable[Block], chain_id: bytes) -> None:
        for block in blocks:
            self.scan(block, chain_id)

    def _apply(self, tx_id: bytes, body: object) -> None:
        if isinstance(body, LoanOriginateBody):
            if self._party is not None and self._party != (
                body.lender if self.role == "lender" else body.borrower
            ):
                return  # not ours in this role: its memo for this role is sealed to another key
            disbursement = body.outputs[0].commitment
            opening = self._open(body.principal_memos, disbursement)
            if opening is None:
                self._flag(tx_id, tx_id, BAD_MEMO)
            self.loans[tx_id] = TrackedLoan(
                body.lender, body.borrower, body.asset, body.terms, opening
            )
            return
        if not isinstance(body, (LoanRepayBody, LoanAccrueBody, LoanCloseBody)):
            return
        loan = self.loans.get(body.loan_id)
        if loan is None:
            return
        if isinstance(body, LoanCloseBody):
            loan.closed = True
            return
        current = loan.outstanding
        if current is None:
            return
        if isinstance(body, LoanRepayBody):
            remaining = repaid_outstanding(current.commitment(), body.outputs[0].commitment)
            loan.outstanding = self._open(body.memos, remaining)
            if loan.outstanding is None:
                self._flag(body.loan_id, tx_id, BAD_MEMO)
            return
        expected = interest_for(current.value, loan.terms.rate_bps)
        interest = self._open(body.memos, body.interest)
        if interest is None or interest.value != expected:
            self._flag(body.loan_id, tx_id, BAD_INTEREST_MEMO)
            loan.outstanding = None
            return
        loan.outstanding = Opening(
            current.value + interest.value,
            (current.blinding + interest.blinding) % group.ORDER,
            current.asset,
        )

    def outstanding_openings(self, borrower: bytes) -> dict[bytes, Opening]:
        """The openings of ``borrower``'s active loans, as ``prove_exposure`` wants them."""
        return {
            loan_id: loan.outstanding
            for loan_id, loan in self.loans.items()
            if loan.borrower == borrower and not loan.closed and loan.outstanding is not None
        }

    def totals(self) -> tuple[dict[tuple[bytes, bytes], int], dict[bytes, int]]:
        """Outstanding per (lender, asset) and per borrower, over active loans with known values."""
        by_lender: dict[tuple[bytes, bytes], int] = {}
        by_borrower: dict[bytes, int] = {}
        for loan in self.loans.values():
            if loan.closed or loan.outstanding is None:
                continue
            value = loan.outstanding.value
            key = (loan.lender, loan.asset)
            by_lender[key] = by_lender.get(key, 0) + value
            by_borrower[loan.borrower] = by_borrower.get(loan.borrower, 0) + value
        return by_lender, by_borrower
