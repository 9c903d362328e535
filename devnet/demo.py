"""The devnet demo: bank 0 registers firms X and Y and issues to X, X pays Y, and a table
shows who sees what (wallets: amounts; a node and bank 2: commitments; the regulator: totals);
then the loan steps of ``devnet.loan_demo``."""

from __future__ import annotations

from typing import Final

from rich.console import Console
from rich.table import Table

from client.audit import ApiMemoKeys
from client.sdk import Client, VeilApiError
from client.wallet_file import WalletDir
from devnet.loan_demo import run_loan_demo
from devnet.network import Devnet, DevnetError
from ledger.auditor import Auditor
from ledger.block import decode_block
from ledger.build import OutputPlan, build_issue, build_register_account
from ledger.tx import TransferBody, confidential_bodies

ISSUED_TO_X: Final = 1_000_000
PAID_TO_Y: Final = 250_000
COMMIT_TIMEOUT_S: Final = 60.0


def _committed(client: Client, tx_bytes: bytes, what: str, console: Console) -> int:
    status = client.wait_for_commit(client.submit(tx_bytes).id, COMMIT_TIMEOUT_S)
    if status.status != "committed" or status.height is None:
        raise DevnetError(f"demo: {what} was {status.status} ({status.reason or 'no reason'})")
    console.print(f"  [green]✓[/] {what}: committed at height {status.height}")
    return status.height


def run_demo(devnet: Devnet, console: Console) -> None:
    client = Client(devnet.url(0), timeout_s=30)
    chain = client.chain()
    bank = WalletDir.open(devnet.bank_dir(0), read_state=False)
    firm_x = WalletDir.open(devnet.client_dir("firm-x"), read_state=False)
    firm_y = WalletDir.open(devnet.client_dir("firm-y"), read_state=False)
    asset = next(a for a in chain.assets if a.issuer == bank.public_key)
    console.rule("[bold]1. Bank 0 registers firms X and Y and issues deposit tokens to X")
    nonce = client.account(bank.public_key).last_nonce
    for name, firm in (("firm X", firm_x), ("firm Y", firm_y)):
        try:
            client.account(firm.public_key)
            console.print(f"  {name} is already registered")
            continue
        except VeilApiError as exc:
            if exc.code != "ACCOUNT_NOT_FOUND":
                raise
        nonce += 1
        pop = firm.wallet.proof_of_possession(chain.chain_id, bank.public_key)
        tx = build_register_account(
            bank.wallet.identity,
            chain.chain_id,
            firm.public_key,
            firm.memo_public_key,
            proof_of_possession=pop,
            nonce=nonce,
        )
        _committed(client, tx.encode(), f"register {name}", console)
    nonce += 1
    plan = OutputPlan(firm_x.public_key, firm_x.memo_public_key, ISSUED_TO_X)
    issue = build_issue(
        bank.wallet.identity,
        chain.chain_id,
        asset.id,
        [plan],
        chain.auditor_memo_public_key,
        nonce=nonce,
    )
    _committed(client, issue.encode(), f"issue {ISSUED_TO_X:,} {asset.symbol} to firm X", console)

    console.rule("[bold]2. Firm X pays firm Y confidentially")
    firm_x = WalletDir.open(devnet.client_dir("firm-x"))
    firm_x.sync(client)
    pay = firm_x.wallet.pay(
        chain.chain_id,
        asset.id,
        recipient=firm_y.public_key,
        recipient_memo_key=firm_y.memo_public_key,
        amount=PAID_TO_Y,
        auditor_memo_key=chain.auditor_memo_public_key,
    )
    height = _committed(client, pay.encode(), f"firm X pays firm Y {PAID_TO_Y:,}", console)

    console.rule("[bold]3. Who sees what")
    firm_x.sync(client)
    firm_y = WalletDir.open(devnet.client_dir("firm-y"))
    firm_y.sync(client)
    bank2_client = Client(devnet.url(min(2, devnet.nodes - 1)), timeout_s=30)
    # Node 2 commits the same block, maybe a moment later.
    if bank2_client.wait_for_commit(pay.tx_id, COMMIT_TIMEOUT_S).status != "committed":
        raise DevnetError("demo: node 2 did not commit the payment")
    block = bank2_client.block(height)
    transfer = block.txs[0]
    raw = decode_block(bank2_client.block_raw(height))
    proof_bytes = sum(
        len(body.range_proof)
        for _, body in confidential_bodies(raw.txs, chain.chain_id)
        if isinstance(body, TransferBody)
    )
    auditor = Auditor(
        [WalletDir.open(devnet.regulator_dir, read_state=False).wallet.memo_private_key]
    )
    spent: set[bytes] = set()
    for h in range(1, client.chain().height + 1):
        scanned = decode_block(client.block_raw(h))
        auditor.scan(scanned, chain.chain_id)
        for _, body in confidential_bodies(scanned.txs, chain.chain_id):
            if isinstance(body, TransferBody):
                spent.update(body.inputs)
    auditor.check_owner_memos(ApiMemoKeys(client))
    issued_now = next(a for a in client.chain().assets if a.id == asset.id).issued_total
    audited = sum(
        o.value for oid, o in auditor.openings.items() if oid not in spent and o.asset == asset.id
    )
    table = Table("who", "what they see", title=f"the payment at height {height}")
    table.add_row("firm X's wallet", f"{firm_x.balances().get(asset.id, 0):,} {asset.symbol}")
    table.add_row("firm Y's wallet", f"{firm_y.balances().get(asset.id, 0):,} {asset.symbol}")
    commitments = ", ".join(o.commitment.hex()[:12] + "…" for o in transfer.outputs)
    table.add_row(
        "node 2's API / bank 2",
        f"🔒 amounts hidden: commitments {commitments}; range proof {proof_bytes} bytes",
    )
    table.add_row(
        "regulator's audit",
        f"{asset.symbol}: {audited:,} unspent of {issued_now:,}"
        " issued, memo mismatches: "
        f"{len(auditor.bad)}",
    )
    console.print(table)
    if firm_y.balances().get(asset.id, 0) < PAID_TO_Y:
        raise DevnetError("demo: firm Y's wallet does not show the payment")
    run_loan_demo(devnet, console)
