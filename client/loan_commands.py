"""``veil loan``: confidential loans from the command line (issue 11, docs/loans.md).

This module has the group, origination, the lifecycle and the public reads;
``client.loan_proofs`` adds the proof commands to the same group.

Origination takes two signatures, so three steps: the bank's ``offer`` (inputs,
disbursement, memos; its secrets stay in its wallet directory), the firm's
``accept`` (it opens the memo, checks the amount, and signs its consent), the
bank's ``originate`` (it signs and submits; prints the loan id). Then ``repay``
(firm), ``accrue`` (bank), ``close`` (firm), the public ``show``/``list``, and
the firm's proofs: ``exposure-proof`` and ``credit-report``, which any bank
checks against its own node with ``verify-exposure`` / ``verify-report``
(``VALID`` exits 0, ``INVALID: <reason>`` exits 1).

Amounts and openings come from the wallet's loan scan (``client.wallet_loans``);
the node only ever sees commitments and proofs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.table import Table

from client.api_types import Loan, TxStatus
from client.commands import (
    Settings,
    _emit,
    _hex_arg,
    _settings,
    json_option,
    user_errors,
    wait_option,
    wallet_option,
)
from client.loan_files import (
    ACCEPTED_KIND,
    OFFER_KIND,
    LoanFileError,
    forget_pending_offer,
    load_pending_offer,
    offer_id,
    read_document,
    record_field,
    save_pending_offer,
    write_document,
)
from client.sdk import Client
from client.wallet_file import WalletDir
from ledger.credit_report import (
    STATUS_ACTIVE,
    STATUS_CLOSED,
    STATUS_OVERDUE,
)
from ledger.loan_build import (
    LoanKeys,
    build_accrue,
    build_close,
    build_offer,
    build_repay,
    complete_origination,
    sign_consent,
)
from ledger.loan_scan import TrackedLoan
from ledger.loans import MAX_RATE_BPS, check_consent
from ledger.reasons import TxRejected
from ledger.tx import MAX_LABEL_CHARS, LoanOriginateBody, LoanTerms
from ledger.wallet import select_inputs
from privacy.memo import MemoError, Opening, try_open_memo

P = ParamSpec("P")
R = TypeVar("R")
WAIT_S: Final = 60.0


def loan_errors(command: Callable[P, R]) -> Callable[P, R]:
    """``user_errors`` plus the loan files' errors: one line, exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except LoanFileError as exc:
            raise click.ClickException(str(exc)) from None

    return user_errors(wrapper)


@click.group("loan")
def loan() -> None:
    """Confidential loans: offer, accept, originate, repay, accrue, close, prove exposure."""


def synced(settings: Settings, wallet_dir: Path) -> tuple[Client, WalletDir]:
    client = settings.client()
    opened = WalletDir.open(wallet_dir)
    opened.sync(client)
    return client, opened


def warn_flags(opened: WalletDir) -> None:
    """Every loan memo the wallet's scan flagged, on stderr (the borrower's check of C_I)."""
    for role, flag in opened.loans.flags():
        click.echo(
            f"warning: loan {flag.loan_id.hex()} ({role}): tx {flag.tx_id.hex()} has a memo "
            f"that does not open its commitment to the right amount ({flag.reason})",
            err=True,
        )


def _send(settings: Settings, client: Client, raw: bytes, wait: bool) -> TxStatus:
    status = client.submit(raw)
    if wait:
        status = client.wait_for_commit(status.id, timeout_s=WAIT_S)
        if status.status != "committed":
            raise click.ClickException(
                f"tx {status.id.hex()} {status.status}"
                + (f": {status.reason}" if status.reason else "")
            )
    return status


def _report_tx(settings: Settings, status: TxStatus, what: str, extra: dict[str, object]) -> None:
    data: dict[str, object] = {
        "tx_id": status.id.hex(),
        "status": status.status,
        "height": status.height,
        **extra,
    }
    _emit(
        settings,
        data,
        lambda c: c.print(
            f"{what}: tx [bold]{status.id.hex()}[/] {status.status}"
            + (f" at height {status.height}" if status.height is not None else "")
        ),
    )


def _loan_keys(client: Client, lender: bytes, borrower: bytes, auditor: bytes) -> LoanKeys:
    return LoanKeys(
        client.account(lender).memo_public_key, client.account(borrower).memo_public_key, auditor
    )


def _my_loan(opened: WalletDir, loan_id: bytes, role: str) -> TrackedLoan:
    tracker = opened.loans.borrower if role == "borrower" else opened.loans.lender
    tracked = tracker.loans.get(loan_id)
    if tracked is None:
        raise click.ClickException(f"this wallet is not the {role} of a loan {loan_id.hex()}")
    if tracked.closed:
        raise click.ClickException(f"loan {loan_id.hex()} is closed")
    return tracked


def _known_outstanding(loan_id: bytes, tracked: TrackedLoan) -> Opening:
    if tracked.outstanding is None:
        raise click.ClickException(
            f"the outstanding amount of loan {loan_id.hex()} is unknown to this wallet: "
            "a memo of it was flagged (see the warnings)"
        )
    return tracked.outstanding


@dataclasses.dataclass(frozen=True, slots=True)
class _MyLoan:
    """A lifecycle command's start: the synced wallet and its own open loan, whose
    outstanding amount the wallet knows."""

    settings: Settings
    client: Client
    opened: WalletDir
    loan_id: bytes
    tracked: TrackedLoan
    outstanding: Opening

    def keys(self, auditor: bytes) -> LoanKeys:
        return _loan_keys(self.client, self.tracked.lender, self.tracked.borrower, auditor)

    def send(self, raw: bytes, wait: bool, what: str, extra: dict[str, object]) -> None:
        status = _send(self.settings, self.client, raw, wait)
        _report_tx(self.settings, status, what, {"loan_id": self.loan_id.hex(), **extra})


def _open_my_loan(ctx: click.Context, wallet_dir: Path, loan_hex: str, role: str) -> _MyLoan:
    """Sync the wallet (warning of flagged memos) and find its open loan as ``role``."""
    settings = _settings(ctx)
    loan_id = _hex_arg(loan_hex, 32, "--loan")
    client, opened = synced(settings, wallet_dir)
    warn_flags(opened)
    tracked = _my_loan(opened, loan_id, role)
    outstanding = _known_outstanding(loan_id, tracked)
    return _MyLoan(settings, client, opened, loan_id, tracked, outstanding)


loan_id_option = click.option("--loan", "loan_hex", required=True, metavar="ID")


# --- origination -----------------------------------------------------------------------------


@loan.command("offer")
@wallet_option
@click.option("--borrower", required=True, metavar="PK")
@click.option("--amount", required=True, type=click.IntRange(min=1))
@click.option("--rate-bps", required=True, type=click.IntRange(0, MAX_RATE_BPS))
@click.option("--period-blocks", required=True, type=click.IntRange(min=1))
@click.option("--maturity-blocks", required=True, type=click.IntRange(min=1))
@click.option("--purpose", required=True, metavar="TEXT")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@loan_errors
def loan_offer(
    ctx: click.Context,
    *,
    wallet_dir: Path,
    borrower: str,
    amount: int,
    rate_bps: int,
    period_blocks: int,
    maturity_blocks: int,
    purpose: str,
    out: Path,
) -> None:
    """As a bank: offer BORROWER a loan of AMOUNT of the bank's deposit token (step 1 of 3).

    The bank's inputs fund the disbursement; the offer file goes to the borrower."""
    if len(purpose) > MAX_LABEL_CHARS:
        raise click.BadParameter(f"at most {MAX_LABEL_CHARS} characters", param_hint="--purpose")
    settings = _settings(ctx)
    client, opened = synced(settings, wallet_dir)
    chain = client.chain()
    borrower_key = _hex_arg(borrower, 32, "--borrower")
    asset = next((a for a in chain.assets if a.issuer == opened.public_key), None)
    if asset is None:
        raise click.ClickException("this wallet is not a bank that issues an asset to lend")
    chosen = select_inputs(list(opened.wallet.unspent.values()), asset.id, amount)
    keys = _loan_keys(client, opened.public_key, borrower_key, chain.auditor_memo_public_key)
    terms = LoanTerms(rate_bps, period_blocks, chain.height + maturity_blocks, purpose)
    offer = build_offer(
        opened.wallet.identity,
        borrower=borrower_key,
        asset=asset.id,
        amount=amount,
        terms=terms,
        inputs=[(o.output_id, o.opening) for o in chosen],
        keys=keys,
        consent_nonce=client.account(borrower_key).last_nonce + 1,
    )
    save_pending_offer(wallet_dir, offer)
    write_document(
        out,
        OFFER_KIND,
        {
            "chain_id": chain.chain_id.hex(),
            "offer_id": offer_id(offer.body),
            "lender": opened.public_key.hex(),
            "borrower": borrower_key.hex(),
            "asset": asset.symbol,
            "amount": amount,
            "terms": _terms_json(terms),
            "body": offer.body.encode().hex(),
        },
    )
    click.echo(
        f"offer {offer_id(offer.body)[:16]}… of {amount:,} {asset.symbol} to {borrower} "
        f"written to {out}; the borrower runs `veil loan accept {out}`"
    )


def _terms_json(terms: LoanTerms) -> dict[str, object]:
    return {
        "rate_bps": terms.rate_bps,
        "period_blocks": terms.period_blocks,
        "maturity_height": terms.maturity_height,
        "purpose": terms.purpose,
    }


@loan.command("accept")
@click.argument("offer_file", type=click.Path(dir_okay=False, path_type=Path))
@wallet_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@loan_errors
def loan_accept(ctx: click.Context, offer_file: Path, wallet_dir: Path, out: Path) -> None:
    """As the borrower: check an offer's amount through its memo and sign consent (step 2)."""
    settings = _settings(ctx)
    client = settings.client()
    opened = WalletDir.open(wallet_dir, read_state=False)
    document = read_document(offer_file, OFFER_KIND)
    body = record_field(offer_file, document, "body", LoanOriginateBody)
    chain = client.chain()
    if document.get("chain_id") != chain.chain_id.hex():
        raise click.ClickException(f"{offer_file}: the offer is for another chain")
    if body.borrower != opened.public_key:
        raise click.ClickException(
            f"{offer_file}: the offer is for borrower {body.borrower.hex()}, not this wallet"
        )
    disbursement = body.outputs[0]
    principal = _open_for_me(body.principal_memos.borrower_memo, opened, disbursement.commitment)
    owned = _open_for_me(disbursement.owner_memo, opened, disbursement.commitment)
    if principal is None or owned is None or principal.asset != body.asset:
        raise click.ClickException(
            f"{offer_file}: the disbursement's memos do not open to its commitment for this "
            "wallet: refusing to consent to an amount it cannot read"
        )
    claimed = document.get("amount")
    if principal.value != claimed:
        raise click.ClickException(
            f"{offer_file}: the offer says {claimed!r} but the disbursement commits to "
            f"{principal.value:,}"
        )
    last_nonce = client.account(opened.public_key).last_nonce
    if body.consent_nonce <= last_nonce:
        raise click.ClickException(
            f"{offer_file}: consent nonce {body.consent_nonce} is already used (last "
            f"{last_nonce}); ask the bank for a new offer"
        )
    consent = sign_consent(opened.wallet.identity, chain.chain_id, body)
    accepted = dataclasses.replace(body, borrower_consent=consent)
    write_document(
        out,
        ACCEPTED_KIND,
        {
            "chain_id": chain.chain_id.hex(),
            "offer_id": offer_id(body),
            "amount": principal.value,
            "terms": _terms_json(body.terms),
            "body": accepted.encode().hex(),
        },
    )
    terms = body.terms
    click.echo(
        f"accepted {principal.value:,} from {body.lender.hex()[:16]}… at {terms.rate_bps} bps "
        f"per {terms.period_blocks} blocks, maturity {terms.maturity_height}, purpose "
        f"{terms.purpose!r}; the bank runs `veil loan originate {out}`"
    )


def _open_for_me(memo: bytes, opened: WalletDir, commitment: bytes) -> Opening | None:
    try:
        return try_open_memo(memo, opened.wallet.memo_private_key, commitment)
    except MemoError:
        return None


@loan.command("originate")
@click.argument("accepted_file", type=click.Path(dir_okay=False, path_type=Path))
@wallet_option
@wait_option
@click.pass_context
@loan_errors
def loan_originate(ctx: click.Context, accepted_file: Path, wallet_dir: Path, wait: bool) -> None:
    """As the bank: sign and submit an accepted offer; prints the loan id (step 3)."""
    settings = _settings(ctx)
    client = settings.client()
    opened = WalletDir.open(wallet_dir, read_state=False)
    document = read_document(accepted_file, ACCEPTED_KIND)
    body = record_field(accepted_file, document, "body", LoanOriginateBody)
    if body.lender != opened.public_key:
        raise click.ClickException(f"{accepted_file}: the offer is not this bank's")
    offer = load_pending_offer(wallet_dir, body)
    chain_id = client.chain().chain_id
    try:
        check_consent(body, chain_id)
    except TxRejected as exc:
        raise click.ClickException(f"{accepted_file}: {exc.reason}: {exc}") from None
    built = complete_origination(opened.wallet.identity, chain_id, offer, body.borrower_consent)
    status = _send(settings, client, built.built.encode(), wait)
    if status.status == "committed":
        forget_pending_offer(wallet_dir, body)
    loan_id = built.built.tx_id.hex()
    data = {"loan_id": loan_id, "status": status.status, "height": status.height}
    _emit(settings, data, lambda c: c.print(loan_id))


# --- lifecycle -------------------------------------------------------------------------------


@loan.command("repay")
@wallet_option
@loan_id_option
@click.option("--amount", required=True, type=click.IntRange(min=1))
@wait_option
@click.pass_context
@loan_errors
def loan_repay(
    ctx: click.Context, *, wallet_dir: Path, loan_hex: str, amount: int, wait: bool
) -> None:
    """As the borrower: pay AMOUNT of the loan to its lender (never more than is owed)."""
    mine = _open_my_loan(ctx, wallet_dir, loan_hex, "borrower")
    if amount > mine.outstanding.value:
        raise click.ClickException(
            f"repaying {amount:,} overpays the outstanding {mine.outstanding.value:,}"
        )
    chain = mine.client.chain()
    wallet = mine.opened.wallet
    chosen = select_inputs(list(wallet.unspent.values()), mine.tracked.asset, amount)
    built = build_repay(
        wallet.identity,
        chain.chain_id,
        loan_id=mine.loan_id,
        lender=mine.tracked.lender,
        asset=mine.tracked.asset,
        amount=amount,
        outstanding=mine.outstanding,
        inputs=[(o.output_id, o.opening) for o in chosen],
        keys=mine.keys(chain.auditor_memo_public_key),
    )
    left = built.outstanding.value
    what = f"repaid {amount:,}, {left:,} outstanding"
    mine.send(built.built.encode(), wait, what, {"outstanding": left})


@loan.command("accrue")
@wallet_option
@loan_id_option
@wait_option
@click.pass_context
@loan_errors
def loan_accrue(ctx: click.Context, *, wallet_dir: Path, loan_hex: str, wait: bool) -> None:
    """As the lender: add the next period's interest ⌊outstanding·rate/10 000⌋."""
    mine = _open_my_loan(ctx, wallet_dir, loan_hex, "lender")
    public = mine.client.loan(mine.loan_id)
    period = public.accrued_periods + 1
    ends = public.originated_height + period * public.period_blocks
    height = mine.client.chain().height
    if height + 1 < ends:
        raise click.ClickException(
            f"period {period} of loan {mine.loan_id.hex()[:16]}… ends at height {ends}; "
            f"the chain is at {height}"
        )
    chain = mine.client.chain()
    built = build_accrue(
        mine.opened.wallet.identity,
        chain.chain_id,
        loan_id=mine.loan_id,
        period=period,
        rate_bps=mine.tracked.terms.rate_bps,
        outstanding=mine.outstanding,
        keys=mine.keys(chain.auditor_memo_public_key),
    )
    interest = built.outstanding.value - mine.outstanding.value
    what = (
        f"accrued period {period}: interest {interest:,}, {built.outstanding.value:,} outstanding"
    )
    mine.send(built.built.encode(), wait, what, {"period": period, "interest": interest})


@loan.command("close")
@wallet_option
@loan_id_option
@wait_option
@click.pass_context
@loan_errors
def loan_close(ctx: click.Context, *, wallet_dir: Path, loan_hex: str, wait: bool) -> None:
    """As the borrower: close a loan that is repaid in full (proves it owes zero)."""
    mine = _open_my_loan(ctx, wallet_dir, loan_hex, "borrower")
    if mine.outstanding.value != 0:
        raise click.ClickException(
            f"loan {mine.loan_id.hex()[:16]}… still has {mine.outstanding.value:,} outstanding: "
            "repay it first"
        )
    chain_id = mine.client.chain().chain_id
    identity = mine.opened.wallet.identity
    built = build_close(identity, chain_id, loan_id=mine.loan_id, outstanding=mine.outstanding)
    mine.send(built.encode(), wait, "closed", {})


# --- reading ---------------------------------------------------------------------------------


def _loan_json(item: Loan) -> dict[str, object]:
    return {
        "id": item.id.hex(),
        "lender": item.lender.hex(),
        "borrower": item.borrower.hex(),
        "asset": item.asset.hex(),
        "rate_bps": item.rate_bps,
        "period_blocks": item.period_blocks,
        "maturity_height": item.maturity_height,
        "purpose": item.purpose,
        "principal_commitment": item.principal_commitment.hex(),
        "outstanding_commitment": item.outstanding_commitment.hex(),
        "status": item.status,
        "overdue": item.overdue,
        "originated_height": item.originated_height,
        "accrued_periods": item.accrued_periods,
        "closed_height": item.closed_height,
    }


def _status_text(item: Loan) -> str:
    if item.closed:
        return STATUS_CLOSED
    return STATUS_OVERDUE if item.overdue else STATUS_ACTIVE


@loan.command("show")
@click.argument("loan_hex", metavar="ID")
@click.option(
    "--wallet",
    "wallet_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also show the outstanding amount this wallet (lender or borrower) can open.",
)
@json_option
@click.pass_context
@loan_errors
def loan_show(ctx: click.Context, loan_hex: str, wallet_dir: Path | None, json_flag: bool) -> None:
    """A loan's public terms, status, overdue flag and commitments (never an amount)."""
    settings = _settings(ctx, json_flag)
    client = settings.client()
    item = client.loan(_hex_arg(loan_hex, 32, "ID"))
    data = _loan_json(item)
    if wallet_dir is not None:
        opened = WalletDir.open(wallet_dir)
        opened.sync(client)
        warn_flags(opened)
        found = opened.loans.find(item.id)
        opening = None if found is None else found[1].outstanding
        data["outstanding"] = None if opening is None else opening.value

    def render(console: Console) -> None:
        table = Table("field", "value", title=f"loan {item.id.hex()}")
        for key, value in data.items():
            table.add_row(key, "-" if value is None else str(value))
        console.print(table)

    _emit(settings, data, render)


@loan.command("list")
@click.option("--borrower", required=True, metavar="PK")
@json_option
@click.pass_context
@loan_errors
def loan_list(ctx: click.Context, borrower: str, json_flag: bool) -> None:
    """Every loan of a borrower the chain lists (closed ones too), amounts hidden."""
    settings = _settings(ctx, json_flag)
    answer = settings.client().borrower_loans(_hex_arg(borrower, 32, "--borrower"))
    data = {"height": answer.height, "loans": [_loan_json(item) for item in answer.loans]}

    def render(console: Console) -> None:
        table = Table(
            "loan",
            "lender",
            "status",
            "rate bps",
            "originated",
            "maturity",
            "outstanding",
            title=f"loans of {borrower[:16]}… at height {answer.height}",
        )
        for item in answer.loans:
            table.add_row(
                item.id.hex()[:16] + "…",
                item.lender.hex()[:16] + "…",
                _status_text(item),
                str(item.rate_bps),
                str(item.originated_height),
                str(item.maturity_height),
                "hidden (" + item.outstanding_commitment.hex()[:12] + "…)",
            )
        console.print(table)

    _emit(settings, data, render)
