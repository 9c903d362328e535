"""The devnet demo's loan steps (issue 11): banks 0 and 1 lend to firm X, one accrual and
one repayment, firm X proves its total debt to bank 2, a limit below the truth cannot be
proven, and the credit report, with a table of who sees what at each step."""

from __future__ import annotations

import dataclasses
import time
from typing import Final

from rich.console import Console
from rich.table import Table

from client.sdk import Client
from client.wallet_file import WalletDir
from devnet.network import Devnet, DevnetError
from ledger.block import decode_block
from ledger.build import OutputPlan, build_issue
from ledger.credit_report import CreditReport, public_record_over, report_problem_over
from ledger.exposure import (
    ProofRefusedError,
    exposure_problem_over,
    prove_exposure_over,
    prove_min_balance_at,
)
from ledger.loan_build import (
    LoanKeys,
    build_accrue,
    build_offer,
    build_repay,
    complete_origination,
    sign_consent,
)
from ledger.loan_scan import LoanTracker
from ledger.rules import OutputRecord
from ledger.tx import LoanTerms
from ledger.wallet import select_inputs

LOANS: Final = ((0, 400_000, 300), (1, 250_000, 450))
"""(bank, principal, rate in bps per period) of the two loans to firm X."""
PERIOD_BLOCKS: Final = 1
MATURITY_BLOCKS: Final = 500
REPAID_TO_BANK_1: Final = 100_000
BANK_FUNDS: Final = 2_000_000
LIMIT_STEP: Final = 100_000
MIN_BALANCE: Final = 100_000
COMMIT_TIMEOUT_S: Final = 60.0


def _commit(client: Client, tx_bytes: bytes, what: str, console: Console) -> int:
    status = client.wait_for_commit(client.submit(tx_bytes).id, COMMIT_TIMEOUT_S)
    if status.status != "committed" or status.height is None:
        raise DevnetError(f"demo: {what} was {status.status} ({status.reason or 'no reason'})")
    console.print(f"  [green]✓[/] {what}: committed at height {status.height}")
    return status.height


def _synced(devnet: Devnet, name: str, client: Client, *, bank: int | None = None) -> WalletDir:
    """A bank's (``bank``) or a demo client's (``name``) wallet, synced to the tip."""
    path = devnet.bank_dir(bank) if bank is not None else devnet.client_dir(name)
    opened = WalletDir.open(path)
    opened.sync(client)
    return opened


def _keys(client: Client, lender: bytes, borrower: bytes, auditor: bytes) -> LoanKeys:
    return LoanKeys(
        client.account(lender).memo_public_key, client.account(borrower).memo_public_key, auditor
    )


def _lend(devnet: Devnet, client: Client, console: Console, loan: tuple[int, int, int]) -> bytes:
    """The bank of ``loan`` (bank, principal, rate) funds itself, offers firm X the loan,
    X consents, the bank submits."""
    bank_index, amount, rate = loan
    chain = client.chain()
    bank = _synced(devnet, "", client, bank=bank_index)
    asset = next(a for a in chain.assets if a.issuer == bank.public_key)
    if bank.balances().get(asset.id, 0) < amount:
        issue = build_issue(
            bank.wallet.identity,
            chain.chain_id,
            asset.id,
            [OutputPlan(bank.public_key, bank.memo_public_key, BANK_FUNDS)],
            chain.auditor_memo_public_key,
            nonce=client.account(bank.public_key).last_nonce + 1,
        )
        _commit(client, issue.encode(), f"bank {bank_index} funds itself", console)
        bank.sync(client)
    firm_x = WalletDir.open(devnet.client_dir("firm-x"), read_state=False)
    terms = LoanTerms(rate, PERIOD_BLOCKS, chain.height + MATURITY_BLOCKS, "working capital")
    chosen = select_inputs(list(bank.wallet.unspent.values()), asset.id, amount)
    offer = build_offer(
        bank.wallet.identity,
        borrower=firm_x.public_key,
        asset=asset.id,
        amount=amount,
        terms=terms,
        inputs=[(o.output_id, o.opening) for o in chosen],
        keys=_keys(client, bank.public_key, firm_x.public_key, chain.auditor_memo_public_key),
        consent_nonce=client.account(firm_x.public_key).last_nonce + 1,
    )
    console.print(
        f"  bank {bank_index} offers firm X {amount:,} {asset.symbol} at {rate} bps per "
        f"{PERIOD_BLOCKS}-block period, maturity height {terms.maturity_height}"
    )
    consent = sign_consent(firm_x.wallet.identity, chain.chain_id, offer.body)
    console.print("  firm X opens the memo, reads the amount, and signs its consent")
    built = complete_origination(bank.wallet.identity, chain.chain_id, offer, consent)
    _commit(client, built.built.encode(), f"loan {built.built.tx_id.hex()[:16]}…", console)
    return built.built.tx_id


def _accrue_and_repay(devnet: Devnet, client: Client, console: Console, loans: list[bytes]) -> None:
    chain = client.chain()
    bank0 = _synced(devnet, "", client, bank=0)
    lent = bank0.loans.lender.loans[loans[0]]
    if lent.outstanding is None:
        raise DevnetError("demo: bank 0's wallet cannot open its loan's outstanding")
    public = client.loan(loans[0])
    accrual = build_accrue(
        bank0.wallet.identity,
        chain.chain_id,
        loan_id=loans[0],
        period=public.accrued_periods + 1,
        rate_bps=lent.terms.rate_bps,
        outstanding=lent.outstanding,
        keys=_keys(client, lent.lender, lent.borrower, chain.auditor_memo_public_key),
    )
    interest = accrual.outstanding.value - lent.outstanding.value
    _commit(
        client,
        accrual.built.encode(),
        f"bank 0 accrues period {public.accrued_periods + 1}: interest ⌊v·rate/10 000⌋ = "
        f"{interest:,}, checked by every validator without seeing v",
        console,
    )
    firm_x = _synced(devnet, "firm-x", client)
    owed = firm_x.loans.borrower.loans[loans[1]]
    if owed.outstanding is None:
        raise DevnetError("demo: firm X's wallet cannot open its loan's outstanding")
    chosen = select_inputs(list(firm_x.wallet.unspent.values()), owed.asset, REPAID_TO_BANK_1)
    repay = build_repay(
        firm_x.wallet.identity,
        chain.chain_id,
        loan_id=loans[1],
        lender=owed.lender,
        asset=owed.asset,
        amount=REPAID_TO_BANK_1,
        outstanding=owed.outstanding,
        inputs=[(o.output_id, o.opening) for o in chosen],
        keys=_keys(client, owed.lender, owed.borrower, chain.auditor_memo_public_key),
    )
    _commit(
        client,
        repay.built.encode(),
        f"firm X repays bank 1 {REPAID_TO_BANK_1:,} (a range proof shows it does not overpay)",
        console,
    )


def run_loan_demo(devnet: Devnet, console: Console) -> None:
    client = Client(devnet.url(0), timeout_s=30)
    console.rule("[bold]4. Banks 0 and 1 lend to firm X (offer, consent, origination)")
    loans = [_lend(devnet, client, console, loan) for loan in LOANS]

    console.rule("[bold]5. One accrual and one repayment")
    _accrue_and_repay(devnet, client, console, loans)

    console.rule("[bold]6. Firm X proves to bank 2 that its total debt is at most a limit")
    firm_x = _synced(devnet, "firm-x", client)
    height = firm_x.state.scan_height
    chain_id = client.chain().chain_id
    listed = client.borrower_loans(firm_x.public_key, height=height)
    openings = firm_x.loans.borrower.outstanding_openings(firm_x.public_key)
    total = sum(o.value for o in openings.values())
    limit = -(-total // LIMIT_STEP) * LIMIT_STEP
    proof = prove_exposure_over(
        listed.records(), height, chain_id, firm_x.public_key, limit, openings=openings
    )
    bank2 = Client(devnet.url(min(2, devnet.nodes - 1)), timeout_s=30)
    seen_by_bank2 = _wait_for_height(bank2, height).borrower_loans(firm_x.public_key, height=height)
    problem = exposure_problem_over(seen_by_bank2.records(), height, chain_id, proof)
    if problem is not None:
        raise DevnetError(f"demo: bank 2 refused firm X's exposure proof: {problem}")
    table = Table("who", "what they see", title=f"firm X's loans at height {height}")
    table.add_row(
        "firm X's wallet",
        ", ".join(f"{o.value:,}" for o in openings.values()) + f" (total {total:,})",
    )
    table.add_row(
        "bank 2 (node 2's API)",
        f"{len(seen_by_bank2.loans)} loans from "
        + ", ".join(sorted({loan.lender.hex()[:8] + "…" for loan in seen_by_bank2.loans}))
        + ": 🔒 amounts hidden, outstanding "
        + ", ".join(loan.outstanding_commitment.hex()[:12] + "…" for loan in seen_by_bank2.loans),
    )
    table.add_row("bank 2's check", f"[green]VALID[/]: total debt ≤ {limit:,}")
    console.print(table)

    console.rule("[bold]7. A limit below the true total cannot be proven")
    try:
        prove_exposure_over(
            listed.records(), height, chain_id, firm_x.public_key, total - 1, openings=openings
        )
    except ProofRefusedError as exc:
        console.print(f"  [green]✓[/] limit {total - 1:,}: no proof exists ({exc})")
    else:
        raise DevnetError("demo: a proof for a limit below the true total was made")
    forged = dataclasses.replace(proof, limit=total - 1)
    forged_problem = exposure_problem_over(seen_by_bank2.records(), height, chain_id, forged)
    if forged_problem is None:
        raise DevnetError("demo: a proof with a lowered limit verified")
    console.print(f"  [green]✓[/] the proof with its limit edited: INVALID: {forged_problem}")

    console.rule("[bold]8. The credit report")
    asset = next(a for a in client.chain().assets if a.symbol == "USD.B0")
    chosen = select_inputs(list(firm_x.wallet.unspent.values()), asset.id, MIN_BALANCE)
    balance = prove_min_balance_at(
        height,
        chain_id,
        firm_x.public_key,
        asset=asset.id,
        minimum=MIN_BALANCE,
        outputs={o.output_id: o.opening for o in chosen},
    )
    report = CreditReport(proof, public_record_over(listed.records(), height), (balance,))

    def unspent(output_id: bytes) -> OutputRecord | None:
        output = bank2.output(output_id)
        if output.height > height or (output.spent and _spent_by(bank2, output.spent_by, height)):
            return None
        return OutputRecord(output.owner, output.asset, output.commitment)

    verdict = report_problem_over(seen_by_bank2.records(), unspent, height, chain_id, report)
    if verdict is not None:
        raise DevnetError(f"demo: bank 2 refused firm X's credit report: {verdict}")
    record = Table("loan", "lender", "originated", "maturity", "status", title="public record")
    for entry in report.record:
        record.add_row(
            entry.loan_id.hex()[:16] + "…",
            entry.lender.hex()[:16] + "…",
            str(entry.originated_height),
            str(entry.maturity_height),
            entry.status,
        )
    console.print(record)
    regulator = LoanTracker(
        "auditor", WalletDir.open(devnet.regulator_dir, read_state=False).wallet.memo_private_key
    )
    for block_height in range(1, height + 1):
        regulator.scan(decode_block(client.block_raw(block_height)), chain_id)
    _, by_borrower = regulator.totals()
    console.print(
        f"  bank 2: [green]VALID[/] credit report ({len(report.encode()):,} bytes): debt ≤ "
        f"{limit:,}, {asset.symbol} balance ≥ {MIN_BALANCE:,}; the regulator reads firm X's "
        f"exact exposure {by_borrower.get(firm_x.public_key, 0):,}"
    )


def _spent_by(client: Client, spender: bytes | None, height: int) -> bool:
    if spender is None:
        return False
    spent_at = client.tx(spender).height
    return spent_at is not None and spent_at <= height


def _wait_for_height(client: Client, height: int) -> Client:
    """Node 2 commits the same blocks, maybe a moment later."""
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    while client.chain().height < height:
        if time.monotonic() > deadline:
            raise DevnetError(f"demo: node 2 did not reach height {height}")
        time.sleep(0.2)
    return client
