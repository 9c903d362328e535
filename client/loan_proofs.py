"""``veil loan exposure-proof|verify-exposure|credit-report|verify-report``: the firm's
proofs and a bank's check of them against its own node (docs/loans.md).

A proof is made over the loans the node lists for the borrower at a height, with
the outstanding openings from the firm's wallet; a verifier reads the same list
from its node for the proof's height (``Store.state_at`` keeps the last 1024),
so it never relies on what the prover says its loans are. ``verify-*`` print
``VALID`` (exit 0) or ``INVALID: <reason>`` (exit 1) with borrower, height, limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Final

import click

from client.api_types import BorrowerLoans
from client.commands import Settings, _settings, json_option, wallet_option
from client.loan_commands import loan, loan_errors, synced, warn_flags
from client.loan_files import (
    EXPOSURE_KIND,
    REPORT_KIND,
    LoanFileError,
    read_document,
    record_field,
    write_document,
)
from client.sdk import Client, VeilApiError
from client.wallet_file import WalletDir
from ledger.block import decode_block
from ledger.credit_report import (
    STATUS_ACTIVE,
    STATUS_CLOSED,
    STATUS_OVERDUE,
    CreditReport,
    public_record_over,
    report_problem_over,
)
from ledger.exposure import (
    ExposureProof,
    MinBalanceProof,
    exposure_problem_over,
    prove_exposure_over,
    prove_min_balance_at,
)
from ledger.loan_scan import LoanTracker
from ledger.reasons import TxRejected
from ledger.rules import OutputRecord
from ledger.wallet import select_inputs
from privacy.memo import Opening


def _openings_at(
    client: Client, opened: WalletDir, height: int, chain_id: bytes
) -> dict[bytes, Opening]:
    """The outstanding openings of the wallet's loans as borrower at ``height``: the
    wallet's own at its scan height, else a fresh scan of blocks 1..height."""
    if height == opened.state.scan_height:
        return opened.loans.borrower.outstanding_openings(opened.public_key)
    tracker = LoanTracker("borrower", opened.wallet.memo_private_key, opened.public_key)
    for block_height in range(1, height + 1):
        try:
            tracker.scan(decode_block(client.block_raw(block_height)), chain_id)
        except TxRejected as exc:
            raise VeilApiError("BAD_RESPONSE", f"block {block_height}: {exc}") from None
    return tracker.outstanding_openings(opened.public_key)


def _prove(
    client: Client, opened: WalletDir, limit: int, height: int
) -> tuple[ExposureProof, BorrowerLoans]:
    chain_id = client.chain().chain_id
    listed = client.borrower_loans(opened.public_key, height=height)
    openings = _openings_at(client, opened, height, chain_id)
    proof = prove_exposure_over(
        listed.records(), height, chain_id, opened.public_key, limit, openings=openings
    )
    return proof, listed


@loan.command("exposure-proof")
@wallet_option
@click.option("--limit", required=True, type=click.IntRange(min=0, max=(1 << 64) - 1))
@click.option("--height", default=None, type=click.IntRange(min=0), help="Default: the tip.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@loan_errors
def loan_exposure_proof(
    ctx: click.Context, *, wallet_dir: Path, limit: int, height: int | None, out: Path
) -> None:
    """As the borrower: prove that all your active loans at a height add up to at most LIMIT.

    No proof exists for a limit below the true total: that is refused here."""
    settings = _settings(ctx)
    client, opened = synced(settings, wallet_dir)
    warn_flags(opened)
    at = opened.state.scan_height if height is None else height
    proof, _ = _prove(client, opened, limit, at)
    write_document(
        out,
        EXPOSURE_KIND,
        {
            "borrower": proof.borrower.hex(),
            "height": proof.height,
            "limit": proof.limit,
            "loan_ids": [lid.hex() for lid in proof.loan_ids],
            "proof": proof.encode().hex(),
        },
    )
    click.echo(
        f"exposure proof: {len(proof.loan_ids)} active loans of {proof.borrower.hex()[:16]}… "
        f"add up to at most {limit:,} at height {proof.height}; written to {out}"
    )


def _verdict(
    settings: Settings, problem: str | None, borrower: bytes, height: int, limit: int
) -> None:
    """Print ``VALID`` or ``INVALID: <reason>`` with what was checked; exit 0 or 1."""
    where = f"borrower {borrower.hex()}, height {height}, limit {limit:,}"
    data = {
        "valid": problem is None,
        "reason": problem,
        "borrower": borrower.hex(),
        "height": height,
        "limit": limit,
    }
    if settings.json_output:
        click.echo(json.dumps(data, indent=2))
    elif problem is None:
        click.echo(f"VALID: {where}")
    else:
        click.echo(f"INVALID: {problem} ({where})")
    if problem is not None:
        raise SystemExit(1)


def _listed_or_problem(
    client: Client, borrower: bytes, height: int
) -> tuple[BorrowerLoans | None, str | None]:
    """The chain's loans of ``borrower`` at ``height``, or why they cannot be read."""
    try:
        return client.borrower_loans(borrower, height=height), None
    except VeilApiError as exc:
        if exc.code in ("HEIGHT_NOT_RETAINED", "INVALID_HEX", "INVALID_PARAMETER"):
            return None, f"{exc.code}: {exc.message}"
        raise


@loan.command("verify-exposure")
@click.argument("proof_file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
@loan_errors
def loan_verify_exposure(ctx: click.Context, proof_file: Path, json_flag: bool) -> None:
    """Check an exposure proof against the loans YOUR node lists for that borrower and
    height. Prints VALID (exit 0) or INVALID: <reason> (exit 1)."""
    settings = _settings(ctx, json_flag)
    try:
        proof = record_field(
            proof_file, read_document(proof_file, EXPOSURE_KIND), "proof", ExposureProof
        )
    except LoanFileError as exc:
        _verdict(settings, f"MALFORMED: {exc}", b"", 0, 0)
        return
    client = settings.client()
    listed, problem = _listed_or_problem(client, proof.borrower, proof.height)
    if listed is not None:
        chain_id = client.chain().chain_id
        problem = exposure_problem_over(listed.records(), listed.height, chain_id, proof)
    _verdict(settings, problem, proof.borrower, proof.height, proof.limit)


def _parse_min_balance(text: str) -> tuple[str, int]:
    symbol, sep, amount = text.rpartition(":")
    if not sep or not symbol or not amount.isdigit():
        raise click.BadParameter("use ASSET:X, e.g. USD.A:5000", param_hint="--min-balance")
    return symbol, int(amount)


@loan.command("credit-report")
@wallet_option
@click.option("--limit", required=True, type=click.IntRange(min=0, max=(1 << 64) - 1))
@click.option("--min-balance", "min_balance", default=None, metavar="ASSET:X")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@loan_errors
def loan_credit_report(
    ctx: click.Context, *, wallet_dir: Path, limit: int, min_balance: str | None, out: Path
) -> None:
    """As the borrower: one file with the exposure proof, the public record of every loan
    (lender, dates, active/closed/overdue) and optionally a minimum-balance proof."""
    wanted = None if min_balance is None else _parse_min_balance(min_balance)
    settings = _settings(ctx)
    client, opened = synced(settings, wallet_dir)
    warn_flags(opened)
    height = opened.state.scan_height
    exposure, listed = _prove(client, opened, limit, height)
    balance_proofs: tuple[MinBalanceProof, ...] = ()
    if wanted is not None:
        symbol, minimum = wanted
        asset = client.chain().asset_by_symbol(symbol)
        if asset is None:
            raise click.ClickException(f"unknown asset {symbol!r}")
        chosen = select_inputs(list(opened.wallet.unspent.values()), asset.id, minimum)
        balance_proofs = (
            prove_min_balance_at(
                height,
                exposure.chain_id,
                opened.public_key,
                asset=asset.id,
                minimum=minimum,
                outputs={o.output_id: o.opening for o in chosen},
            ),
        )
    report = CreditReport(exposure, public_record_over(listed.records(), height), balance_proofs)
    write_document(
        out,
        REPORT_KIND,
        {
            "borrower": opened.public_key.hex(),
            "height": height,
            "limit": limit,
            "loans": [
                {"id": e.loan_id.hex(), "lender": e.lender.hex(), "status": e.status}
                for e in report.record
            ],
            "min_balance": None if wanted is None else {"asset": wanted[0], "at_least": wanted[1]},
            "report": report.encode().hex(),
        },
    )
    counts = {s: sum(e.status == s for e in report.record) for s in _STATUSES}
    click.echo(
        f"credit report at height {height}: exposure at most {limit:,}, "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + ("" if wanted is None else f", balance of {wanted[0]} at least {wanted[1]:,}")
        + f"; written to {out}"
    )


_STATUSES: Final = (STATUS_ACTIVE, STATUS_OVERDUE, STATUS_CLOSED)


def _unspent_at(client: Client, height: int) -> Callable[[bytes], OutputRecord | None]:
    """An output's record if the node says it existed and was unspent at ``height``."""

    def lookup(output_id: bytes) -> OutputRecord | None:
        try:
            output = client.output(output_id)
        except VeilApiError as exc:
            if exc.code in ("OUTPUT_NOT_FOUND", "INVALID_HEX"):
                return None
            raise
        if output.height > height:
            return None
        if output.spent and output.spent_by is not None:
            spent_height = client.tx(output.spent_by).height
            if spent_height is not None and spent_height <= height:
                return None
        return OutputRecord(output.owner, output.asset, output.commitment)

    return lookup


@loan.command("verify-report")
@click.argument("report_file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
@loan_errors
def loan_verify_report(ctx: click.Context, report_file: Path, json_flag: bool) -> None:
    """Check a credit report against YOUR node: the exposure proof, the public record and
    the minimum-balance proof. Prints VALID (exit 0) or INVALID: <reason> (exit 1)."""
    settings = _settings(ctx, json_flag)
    try:
        report = record_field(
            report_file, read_document(report_file, REPORT_KIND), "report", CreditReport
        )
    except LoanFileError as exc:
        _verdict(settings, f"MALFORMED: {exc}", b"", 0, 0)
        return
    exposure = report.exposure
    client = settings.client()
    listed, problem = _listed_or_problem(client, exposure.borrower, exposure.height)
    if listed is not None:
        problem = report_problem_over(
            listed.records(),
            _unspent_at(client, exposure.height),
            listed.height,
            client.chain().chain_id,
            report,
        )
    if problem is None and not settings.json_output:
        for entry in report.record:
            click.echo(
                f"  loan {entry.loan_id.hex()[:16]}… from {entry.lender.hex()[:16]}…: "
                f"{entry.status}, originated {entry.originated_height}, "
                f"maturity {entry.maturity_height}"
            )
        for balance in report.min_balance:
            click.echo(f"  balance of {balance.asset.hex()[:16]}… at least {balance.minimum:,}")
    _verdict(settings, problem, exposure.borrower, exposure.height, exposure.limit)
