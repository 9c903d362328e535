"""Loans in the wallet's scan: the account's loans as borrower and as lender, with
their outstanding openings, kept in the wallet file next to the outputs.

Two ``ledger.loan_scan.LoanTracker``s follow the chain block by block: one reads
the borrower memos of the loans this account took, one the lender memos of the
loans it made. The borrower's tracker recomputes every accrual's interest
I = ⌊v·rate/10 000⌋ from the opening it holds and flags a memo that does not
open C_I to it (``BAD_INTEREST_MEMO``); those flags are kept and shown by
``veil loan list``/``show``. The openings are secrets, like output openings: the
wallet file is 0600 and nothing here sends them anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ledger.block import Block
from ledger.loan_scan import LoanFlag, LoanTracker, Role, TrackedLoan
from ledger.tx import LoanTerms
from privacy.memo import Opening

ROLES: Final[tuple[Role, Role]] = ("borrower", "lender")


@dataclass(slots=True)
class WalletLoans:
    """The account's loan trackers, one per role."""

    borrower: LoanTracker
    lender: LoanTracker

    @classmethod
    def empty(cls, memo_private_key: bytes, public_key: bytes) -> WalletLoans:
        return cls(
            LoanTracker("borrower", memo_private_key, public_key),
            LoanTracker("lender", memo_private_key, public_key),
        )

    def scan(self, block: Block, chain_id: bytes) -> None:
        self.borrower.scan(block, chain_id)
        self.lender.scan(block, chain_id)

    def tracker(self, role: Role) -> LoanTracker:
        return self.borrower if role == "borrower" else self.lender

    def find(self, loan_id: bytes) -> tuple[Role, TrackedLoan] | None:
        """The loan and this account's role in it, if the wallet follows it."""
        for role in ROLES:
            loan = self.tracker(role).loans.get(loan_id)
            if loan is not None:
                return role, loan
        return None

    def flags(self) -> list[tuple[Role, LoanFlag]]:
        return [(role, flag) for role in ROLES for flag in self.tracker(role).flags]

    # --- the wallet file -----------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            role: {
                "loans": [_loan_json(lid, loan) for lid, loan in self.tracker(role).loans.items()],
                "flags": [_flag_json(flag) for flag in self.tracker(role).flags],
            }
            for role in ROLES
        }

    def load_json(self, document: object) -> None:
        """Fill the trackers from ``to_json``'s output; raises ``ValueError`` (or
        ``KeyError``/``TypeError``) for a damaged document."""
        if not isinstance(document, dict):
            raise ValueError("the loans are not an object")
        for role in ROLES:
            part = document[role]
            tracker = self.tracker(role)
            for item in part["loans"]:
                loan_id, loan = _loan_from_json(item)
                tracker.loans[loan_id] = loan
            tracker.flags.extend(_flag_from_json(item) for item in part["flags"])


def _opening_json(opening: Opening | None) -> dict[str, object] | None:
    if opening is None:
        return None
    return {
        "value": opening.value,
        "blinding": f"{opening.blinding:064x}",
        "asset": opening.asset.hex(),
        "note": opening.note.hex(),
    }


def _opening_from_json(obj: object) -> Opening | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise ValueError("an opening is not an object")
    return Opening(
        value=int(obj["value"]),
        blinding=int(str(obj["blinding"]), 16),
        asset=bytes.fromhex(str(obj["asset"])),
        note=bytes.fromhex(str(obj["note"])),
    )


def _loan_json(loan_id: bytes, loan: TrackedLoan) -> dict[str, object]:
    terms = loan.terms
    return {
        "id": loan_id.hex(),
        "lender": loan.lender.hex(),
        "borrower": loan.borrower.hex(),
        "asset": loan.asset.hex(),
        "rate_bps": terms.rate_bps,
        "period_blocks": terms.period_blocks,
        "maturity_height": terms.maturity_height,
        "purpose": terms.purpose,
        "outstanding": _opening_json(loan.outstanding),
        "closed": loan.closed,
    }


def _loan_from_json(obj: object) -> tuple[bytes, TrackedLoan]:
    if not isinstance(obj, dict):
        raise ValueError("a loan is not an object")
    terms = LoanTerms(
        int(obj["rate_bps"]),
        int(obj["period_blocks"]),
        int(obj["maturity_height"]),
        str(obj["purpose"]),
    )
    loan = TrackedLoan(
        bytes.fromhex(str(obj["lender"])),
        bytes.fromhex(str(obj["borrower"])),
        bytes.fromhex(str(obj["asset"])),
        terms,
        _opening_from_json(obj["outstanding"]),
        bool(obj["closed"]),
    )
    return bytes.fromhex(str(obj["id"])), loan


def _flag_json(flag: LoanFlag) -> dict[str, object]:
    return {"loan_id": flag.loan_id.hex(), "tx_id": flag.tx_id.hex(), "reason": flag.reason}


def _flag_from_json(obj: object) -> LoanFlag:
    if not isinstance(obj, dict):
        raise ValueError("a loan flag is not an object")
    return LoanFlag(
        bytes.fromhex(str(obj["loan_id"])), bytes.fromhex(str(obj["tx_id"])), str(obj["reason"])
    )
