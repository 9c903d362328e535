"""The loan part of ``veil audit``: what the regulator reads from every loan's audit memos.

A ``LoanTracker`` in the auditor's role follows each loan's outstanding opening
through the audit memos (origination, repayments, accruals, closing) and flags
a memo that does not open its commitment (``BAD_LOAN_MEMO``) or an accrual
memo that does not open C_I to ⌊v·rate/10 000⌋ (``BAD_INTEREST_MEMO``). The
totals are over active loans whose value is known: per lending bank and asset,
and per borrower (its exposure across banks: one currency unit, docs/loans.md).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ledger.loan_scan import LoanTracker


def loan_audit_json(tracker: LoanTracker, symbols: dict[bytes, str]) -> dict[str, object]:
    by_lender, by_borrower = tracker.totals()
    counts: dict[tuple[bytes, bytes], int] = {}
    for loan in tracker.loans.values():
        if not loan.closed and loan.outstanding is not None:
            key = (loan.lender, loan.asset)
            counts[key] = counts.get(key, 0) + 1
    return {
        "by_lender": [
            {
                "lender": lender.hex(),
                "asset": symbols.get(asset, asset.hex()),
                "outstanding_total": total,
                "active_loans": counts[(lender, asset)],
            }
            for (lender, asset), total in sorted(by_lender.items())
        ],
        "by_borrower": [
            {"borrower": borrower.hex(), "exposure": total}
            for borrower, total in sorted(by_borrower.items())
        ],
        "flags": [
            {"loan_id": flag.loan_id.hex(), "tx_id": flag.tx_id.hex(), "reason": flag.reason}
            for flag in tracker.flags
        ],
    }


def render_loan_audit(console: Console, data: dict[str, object]) -> None:
    lenders = Table("bank", "asset", "active loans", "outstanding", title="loans per bank")
    for row in data["by_lender"]:  # type: ignore[attr-defined]
        lenders.add_row(
            str(row["lender"])[:16] + "…",
            str(row["asset"]),
            str(row["active_loans"]),
            f"{row['outstanding_total']:,}",
        )
    console.print(lenders)
    borrowers = Table("borrower", "exposure (all banks)", title="exposure per borrower")
    for row in data["by_borrower"]:  # type: ignore[attr-defined]
        borrowers.add_row(str(row["borrower"])[:16] + "…", f"{row['exposure']:,}")
    console.print(borrowers)
    for flag in data["flags"]:  # type: ignore[attr-defined]
        console.print(
            f"[red]loan memo[/] loan {flag['loan_id']} tx {flag['tx_id']}: {flag['reason']}"
        )
    if not data["flags"]:
        console.print("no loan memo mismatches")
