"""The credit report: one file a borrower hands a new lender, checked with one call.

It combines the exposure proof, the public record of the borrower's loans at
the proof's height (lender, asset, dates, status: active, closed or overdue;
never an amount) and optionally a minimum-balance proof. ``report_problem``
recomputes the public record from the state and checks both proofs, so a
report holds only if every part of it matches the chain at that height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from ledger.codec import U64, Bytes32, DecodeError, MaxLen, Record
from ledger.exposure import (
    MAX_PROOF_LOANS,
    ExposureProof,
    MinBalanceProof,
    UnspentAt,
    exposure_problem_over,
    min_balance_problem_over,
    state_height,
)
from ledger.loans import LoanRecord, loans_of
from ledger.rules import get_output
from ledger.state import StateReader

MAX_REPORT_BYTES: Final = 1 << 20
STATUS_ACTIVE: Final = "active"
STATUS_CLOSED: Final = "closed"
STATUS_OVERDUE: Final = "overdue"


@dataclass(frozen=True, slots=True)
class LoanEntry(Record):
    """One loan in the public record: who lent, in what, when, and how it stands."""

    loan_id: Bytes32
    lender: Bytes32
    asset: Bytes32
    originated_height: U64
    maturity_height: U64
    closed_height: U64
    status: Annotated[str, MaxLen(16)]


@dataclass(frozen=True, slots=True)
class CreditReport(Record):
    exposure: ExposureProof
    record: Annotated[tuple[LoanEntry, ...], MaxLen(MAX_PROOF_LOANS)]
    min_balance: Annotated[tuple[MinBalanceProof, ...], MaxLen(1)]
    """Empty, or the one minimum-balance proof."""


def public_record(state: StateReader, borrower: bytes) -> tuple[LoanEntry, ...]:
    """Every loan of ``borrower`` in the state, with its status at the state's height."""
    return public_record_over(loans_of(state, borrower), state_height(state))


def public_record_over(
    loans: Sequence[tuple[bytes, LoanRecord]], height: int
) -> tuple[LoanEntry, ...]:
    """The public record of ``loans`` (every loan of one borrower at ``height``)."""
    entries = []
    for loan_id, loan in loans:
        if loan.closed:
            status = STATUS_CLOSED
        elif loan.overdue(height):
            status = STATUS_OVERDUE
        else:
            status = STATUS_ACTIVE
        entries.append(
            LoanEntry(
                loan_id,
                loan.lender,
                loan.asset,
                loan.originated_height,
                loan.terms.maturity_height,
                loan.closed_height,
                status,
            )
        )
    return tuple(entries)


def make_report(
    state: StateReader,
    exposure: ExposureProof,
    min_balance: MinBalanceProof | None = None,
) -> CreditReport:
    return CreditReport(
        exposure,
        public_record(state, exposure.borrower),
        () if min_balance is None else (min_balance,),
    )


def report_problem(state: StateReader, chain_id: bytes, report: CreditReport) -> str | None:
    """``None`` if every part of ``report`` holds against ``state``, else the first reason."""
    return report_problem_over(
        loans_of(state, report.exposure.borrower),
        lambda output_id: get_output(state, output_id),
        state_height(state),
        chain_id,
        report,
    )


def report_problem_over(
    loans: Sequence[tuple[bytes, LoanRecord]],
    unspent_at: UnspentAt,
    height: int,
    chain_id: bytes,
    report: CreditReport,
) -> str | None:
    """``report_problem`` against the borrower's ``loans`` at ``height`` and the outputs
    unspent then (``unspent_at``), as a client reads them from a node."""
    problem = exposure_problem_over(loans, height, chain_id, report.exposure)
    if problem is not None:
        return f"exposure: {problem}"
    if report.record != public_record_over(loans, height):
        return "RECORD_DIFFERS: the public record does not match the chain"
    for proof in report.min_balance:
        if proof.owner != report.exposure.borrower:
            return "min balance: WRONG_OWNER"
        problem = min_balance_problem_over(unspent_at, height, chain_id, proof)
        if problem is not None:
            return f"min balance: {problem}"
    return None


def decode_report(data: bytes) -> CreditReport | str:
    """A report file's bytes decoded, or the reason they are not a report."""
    try:
        return CreditReport.decode(data, max_bytes=MAX_REPORT_BYTES)
    except DecodeError as exc:
        return f"MALFORMED: {exc}"


def verify_report_bytes(state: StateReader, chain_id: bytes, data: bytes) -> str | None:
    """``report_problem`` of a report file's bytes; undecodable bytes are a reason too."""
    report = decode_report(data)
    if isinstance(report, str):
        return report
    return report_problem(state, chain_id, report)
