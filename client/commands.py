"""The ``veil`` commands that talk to a node: wallet, bank, tx, chain, audit (issue 10).

Every user error (a wrong path, an unknown account, a node that is down, a
refused tx) ends as one line on stderr and exit 1, never a traceback:
``user_errors`` turns the SDK's and the wallet's exceptions into that line.
Read commands take ``--json`` (global, or after the command).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.table import Table

from client.audit import ApiMemoKeys
from client.loan_audit import loan_audit_json, render_loan_audit
from client.sdk import Client, VeilApiError
from client.wallet_file import WalletDir, WalletFileError
from ledger.auditor import Auditor
from ledger.block import decode_block
from ledger.build import OutputPlan, build_issue, build_register_account
from ledger.loan_scan import LoanTracker
from ledger.reasons import TxRejected
from ledger.tx import IssueBody, confidential_bodies, signer_of

DEFAULT_NODE_URL: Final = "http://127.0.0.1:8700"
"""The devnet's node 0 (devnet's default base port)."""
NODE_ENV: Final = "VEIL_NODE"
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Settings:
    node_url: str
    json_output: bool

    def client(self) -> Client:
        return Client(self.node_url)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report the errors a user can cause as one line and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except VeilApiError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None
        except WalletFileError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:  # builders and coin selection: insufficient funds, bad keys
            raise click.ClickException(str(exc)) from None

    return wrapper


def _settings(ctx: click.Context, json_flag: bool = False) -> Settings:
    base: Settings = ctx.find_root().obj
    return Settings(base.node_url, base.json_output or json_flag)


def _emit(settings: Settings, data: object, render: Callable[[Console], None]) -> None:
    if settings.json_output:
        click.echo(json.dumps(data, indent=2))
    else:
        render(Console())


def _emit_table(
    settings: Settings,
    data: object,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    title: str | None = None,
) -> None:
    """``data`` as JSON, or one table of ``rows`` under ``columns``."""

    def render(console: Console) -> None:
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*row)
        console.print(table)

    _emit(settings, data, render)


def _hex_arg(value: str, length: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter(f"{what} is not hex") from None
    if len(raw) != length:
        raise click.BadParameter(f"{what} must be {length} bytes, got {len(raw)}")
    return raw


json_option = click.option("--json", "json_flag", is_flag=True, help="Print JSON.")
wallet_option = click.option(
    "--wallet", "wallet_dir", required=True, type=click.Path(file_okay=False, path_type=Path)
)
wait_option = click.option("--wait", is_flag=True, help="Wait until committed or rejected.")


def install_global_options(cli: click.Group) -> None:
    """``--node`` and ``--json`` on the root group, kept in ``ctx.obj``."""
    cli.params.append(
        click.Option(
            ["--node"],
            default=None,
            metavar="URL",
            help=f"Node API URL (default: ${NODE_ENV}, else {DEFAULT_NODE_URL}).",
        )
    )
    cli.params.append(click.Option(["--json", "json_output"], is_flag=True, help="Print JSON."))
    callback = cli.callback

    def root(node: str | None, json_output: bool) -> None:
        click.get_current_context().obj = Settings(
            node or os.environ.get(NODE_ENV) or DEFAULT_NODE_URL, json_output
        )
        if callback is not None:
            callback()

    cli.callback = root
    for group in (wallet, bank, tx, chain):
        cli.add_command(group)
    cli.add_command(audit_command, "audit")


def _submit(settings: Settings, client: Client, raw: bytes, wait: bool) -> None:
    status = client.submit(raw)
    if wait:
        status = client.wait_for_commit(status.id, timeout_s=60)
    data = {
        "id": status.id.hex(),
        "status": status.status,
        "height": status.height,
        "reason": status.reason,
    }
    _emit(
        settings,
        data,
        lambda c: c.print(
            f"tx [bold]{status.id.hex()}[/] {status.status}"
            + (f" at height {status.height}" if status.height is not None else "")
            + (f" ({status.reason})" if status.reason else "")
        ),
    )
    if wait and status.status != "committed":
        raise click.ClickException(
            f"tx {status.id.hex()} {status.status}"
            + (f": {status.reason}" if status.reason else "")
        )


# --- wallet --------------------------------------------------------------------------------


@click.group()
def wallet() -> None:
    """Your account: keys, owned outputs and their openings (kept on this machine only)."""


@wallet.command("new")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@user_errors
def wallet_new(ctx: click.Context, directory: Path) -> None:
    """Create DIRECTORY with a signing key, a memo key and an empty wallet file."""
    opened = WalletDir.create(directory)
    data = {"public_key": opened.public_key.hex(), "memo_public_key": opened.memo_public_key.hex()}
    _emit(
        _settings(ctx),
        data,
        lambda c: c.print(
            f"wallet created in {directory}\npublic key      {data['public_key']}\n"
            f"memo public key {data['memo_public_key']}"
        ),
    )


@wallet.command("show")
@wallet_option
@click.option(
    "--registrar",
    default=None,
    metavar="BANK_PK",
    help="Also print the proof of possession this bank needs to register the account.",
)
@json_option
@click.pass_context
@user_errors
def wallet_show(
    ctx: click.Context, wallet_dir: Path, registrar: str | None, json_flag: bool
) -> None:
    """The account's public key, memo public key and whether it is registered; with
    --registrar, also its proof of possession for that bank (`proof_of_possession`)."""
    settings = _settings(ctx, json_flag)
    opened = WalletDir.open(wallet_dir, read_state=False)
    client = settings.client()
    bank = None if registrar is None else _hex_arg(registrar, 32, "--registrar")
    try:
        client.account(opened.public_key)
        registered = True
    except VeilApiError as exc:
        if exc.code != "ACCOUNT_NOT_FOUND":
            raise
        registered = False
    data: dict[str, object] = {
        "public_key": opened.public_key.hex(),
        "memo_public_key": opened.memo_public_key.hex(),
        "registered": registered,
    }
    if bank is not None:
        pop = opened.wallet.proof_of_possession(client.chain().chain_id, bank)
        data |= {"registrar": bank.hex(), "proof_of_possession": pop.hex()}

    def render(console: Console) -> None:
        console.print(
            f"public key      {data['public_key']}\nmemo public key {data['memo_public_key']}\n"
            f"registered      {'yes' if registered else 'no'}",
            soft_wrap=True,
        )
        if bank is not None:
            console.print(
                f"proof of possession for bank {bank.hex()[:16]}…:\n"
                f"  veil bank register-account --wallet BANKDIR --account {data['public_key']} "
                f"--memo-key {data['memo_public_key']} --pop {data['proof_of_possession']}",
                soft_wrap=True,
            )

    _emit(settings, data, render)


@wallet.command("pop")
@wallet_option
@click.option("--registrar", required=True, metavar="BANK_PK", help="The registering bank's key.")
@click.pass_context
@user_errors
def wallet_pop(ctx: click.Context, wallet_dir: Path, registrar: str) -> None:
    """Print this account's proof of possession for `veil bank register-account --pop`."""
    opened = WalletDir.open(wallet_dir, read_state=False)
    chain_id = _settings(ctx).client().chain().chain_id
    bank = _hex_arg(registrar, 32, "--registrar")
    click.echo(opened.wallet.proof_of_possession(chain_id, bank).hex())


def _synced(settings: Settings, wallet_dir: Path) -> tuple[WalletDir, dict[bytes, str]]:
    client = settings.client()
    opened = WalletDir.open(wallet_dir)
    opened.sync(client)
    symbols = {a.id: a.symbol for a in client.chain().assets}
    return opened, symbols


@wallet.command("balance")
@wallet_option
@json_option
@click.pass_context
@user_errors
def wallet_balance(ctx: click.Context, wallet_dir: Path, json_flag: bool) -> None:
    """Totals per asset of the outputs you own (after scanning new blocks)."""
    settings = _settings(ctx, json_flag)
    opened, symbols = _synced(settings, wallet_dir)
    data = [
        {"asset": symbols.get(asset, asset.hex()), "amount": amount}
        for asset, amount in sorted(opened.balances().items())
    ]
    rows = [(str(row["asset"]), f"{row['amount']:,}") for row in data]
    title = f"balance at height {opened.state.scan_height}"
    _emit_table(settings, data, ("asset", "amount"), rows, title)


@wallet.command("outputs")
@wallet_option
@json_option
@click.pass_context
@user_errors
def wallet_outputs(ctx: click.Context, wallet_dir: Path, json_flag: bool) -> None:
    """Your unspent outputs with their (locally known) amounts."""
    settings = _settings(ctx, json_flag)
    opened, symbols = _synced(settings, wallet_dir)
    data = [
        {
            "id": o.output_id.hex(),
            "tx_id": o.tx_id.hex(),
            "asset": symbols.get(o.asset, o.asset.hex()),
            "amount": o.value,
        }
        for o in sorted(opened.wallet.unspent.values(), key=lambda o: o.output_id)
    ]
    rows = [(str(row["id"])[:16] + "…", str(row["asset"]), f"{row['amount']:,}") for row in data]
    _emit_table(settings, data, ("output", "asset", "amount"), rows)


@wallet.command("history")
@wallet_option
@json_option
@click.pass_context
@user_errors
def wallet_history(ctx: click.Context, wallet_dir: Path, json_flag: bool) -> None:
    """What you received and spent, block by block."""
    settings = _settings(ctx, json_flag)
    opened, symbols = _synced(settings, wallet_dir)
    data = [
        {
            "height": e.height,
            "tx_id": e.tx_id.hex(),
            "kind": e.kind,
            "output_id": e.output_id.hex(),
            "asset": symbols.get(e.asset, e.asset.hex()),
            "amount": e.amount,
        }
        for e in opened.state.history
    ]
    rows = [
        (
            str(row["height"]),
            str(row["tx_id"])[:16] + "…",
            str(row["kind"]),
            str(row["asset"]),
            f"{'+' if row['kind'] == 'received' else '-'}{row['amount']:,}",
        )
        for row in data
    ]
    _emit_table(settings, data, ("height", "tx", "kind", "asset", "amount"), rows)


@wallet.command("rescan")
@wallet_option
@click.pass_context
@user_errors
def wallet_rescan(ctx: click.Context, wallet_dir: Path) -> None:
    """Rebuild the wallet file from the chain (also when it is damaged)."""
    opened = WalletDir.open(wallet_dir, read_state=False)
    height = opened.rescan(_settings(ctx).client())
    click.echo(f"rescanned to height {height}: {len(opened.wallet.unspent)} unspent outputs")


@wallet.command("transfer")
@wallet_option
@click.option("--to", "to", required=True, metavar="PK")
@click.option("--asset", required=True, metavar="SYMBOL")
@click.option("--amount", required=True, type=click.IntRange(min=1))
@wait_option
@click.pass_context
@user_errors
def wallet_transfer(
    ctx: click.Context, *, wallet_dir: Path, to: str, asset: str, amount: int, wait: bool
) -> None:
    """Pay AMOUNT of ASSET to PK confidentially (change comes back to you)."""
    settings = _settings(ctx)
    client = settings.client()
    recipient = _hex_arg(to, 32, "--to")
    opened = WalletDir.open(wallet_dir)
    opened.sync(client)
    chain = client.chain()
    found = chain.asset_by_symbol(asset)
    if found is None:
        raise click.ClickException(f"unknown asset {asset!r}")
    recipient_memo_key = client.account(recipient).memo_public_key
    built = opened.wallet.pay(
        chain.chain_id,
        found.id,
        recipient=recipient,
        recipient_memo_key=recipient_memo_key,
        amount=amount,
        auditor_memo_key=chain.auditor_memo_public_key,
    )
    _submit(settings, client, built.encode(), wait)


# --- bank ----------------------------------------------------------------------------------


@click.group()
def bank() -> None:
    """What member banks do: register accounts, issue deposit tokens."""


REGISTER_HOW: Final = (
    "give --account-wallet DIR (the account's wallet directory, on this machine), or "
    "--account PK --memo-key HEX --pop HEX (the account prints all three with "
    "`veil wallet show --wallet DIR --registrar BANK_PK`)"
)


def _registration_inputs(
    chain_id: bytes,
    bank_key: bytes,
    *,
    account_wallet: Path | None,
    account: str | None,
    memo_key: str | None,
    pop: str | None,
) -> tuple[bytes, bytes, bytes]:
    """(account key, memo key, proof of possession) from one of the two ways to give them."""
    given = [
        name
        for name, value in (("--account", account), ("--memo-key", memo_key), ("--pop", pop))
        if value is not None
    ]
    if account_wallet is not None:
        if given:
            raise click.ClickException(
                f"--account-wallet replaces {', '.join(given)}; {REGISTER_HOW}"
            )
        holder = WalletDir.open(account_wallet, read_state=False)
        proof = holder.wallet.proof_of_possession(chain_id, bank_key)
        return holder.public_key, holder.memo_public_key, proof
    missing = [name for name in ("--account", "--memo-key", "--pop") if name not in given]
    if missing:
        what = "the account's proof of possession" if missing == ["--pop"] else "the account"
        raise click.ClickException(f"missing {what} ({', '.join(missing)}): {REGISTER_HOW}")
    return (
        _hex_arg(account or "", 32, "--account"),
        _hex_arg(memo_key or "", 32, "--memo-key"),
        _hex_arg(pop or "", 64, "--pop"),
    )


@bank.command("register-account")
@wallet_option
@click.option(
    "--account-wallet",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The account's wallet directory: its keys make the proof of possession here.",
)
@click.option("--account", default=None, metavar="PK")
@click.option("--memo-key", default=None, metavar="HEX")
@click.option(
    "--pop",
    default=None,
    metavar="HEX",
    help="The account's proof of possession (`veil wallet show --registrar BANK_PK`).",
)
@wait_option
@click.pass_context
@user_errors
def bank_register_account(
    ctx: click.Context,
    *,
    wallet_dir: Path,
    account_wallet: Path | None,
    account: str | None,
    memo_key: str | None,
    pop: str | None,
    wait: bool,
) -> None:
    """Register an account with its memo key, as the bank of BANKDIR.

    The chain takes a registration only with the account's proof of possession,
    a signature by the account's own key: give the account's wallet directory
    (--account-wallet), or its key, memo key and proof (--account, --memo-key, --pop).
    """
    settings = _settings(ctx)
    client = settings.client()
    opened = WalletDir.open(wallet_dir, read_state=False)
    chain = client.chain()
    account_key, memo_public_key, proof = _registration_inputs(
        chain.chain_id,
        opened.public_key,
        account_wallet=account_wallet,
        account=account,
        memo_key=memo_key,
        pop=pop,
    )
    nonce = client.account(opened.public_key).last_nonce + 1
    try:
        built = build_register_account(
            opened.wallet.identity,
            chain.chain_id,
            account_key,
            memo_public_key,
            proof_of_possession=proof,
            nonce=nonce,
        )
    except ValueError as exc:
        raise click.ClickException(
            f"{exc} (made for another bank or chain? the account makes it with "
            f"`veil wallet show --wallet DIR --registrar {opened.public_key.hex()}`)"
        ) from None
    _submit(settings, client, built.encode(), wait)


@bank.command("issue")
@wallet_option
@click.option("--to", "to", required=True, metavar="PK")
@click.option("--amount", required=True, type=click.IntRange(min=1))
@click.option("--asset", default=None, metavar="SYMBOL", help="Default: the bank's first asset.")
@wait_option
@click.pass_context
@user_errors
def bank_issue(
    ctx: click.Context, *, wallet_dir: Path, to: str, amount: int, asset: str | None, wait: bool
) -> None:
    """Issue AMOUNT of the bank's deposit token to PK (the amount stays hidden on chain)."""
    settings = _settings(ctx)
    client = settings.client()
    opened = WalletDir.open(wallet_dir, read_state=False)
    chain = client.chain()
    mine = [
        a
        for a in chain.assets
        if a.issuer == opened.public_key and (asset is None or a.symbol == asset)
    ]
    if not mine:
        raise click.ClickException(
            f"this bank issues no asset{'' if asset is None else ' ' + repr(asset)}"
        )
    recipient = _hex_arg(to, 32, "--to")
    plan = OutputPlan(recipient, client.account(recipient).memo_public_key, amount)
    nonce = client.account(opened.public_key).last_nonce + 1
    built = build_issue(
        opened.wallet.identity,
        chain.chain_id,
        mine[0].id,
        [plan],
        chain.auditor_memo_public_key,
        nonce=nonce,
    )
    _submit(settings, client, built.encode(), wait)


# --- tx, chain -----------------------------------------------------------------------------


@click.group()
def tx() -> None:
    """A transaction's status."""


def _show_status(settings: Settings, status_id: bytes, client: Client, wait: bool) -> None:
    status = client.wait_for_commit(status_id, 60) if wait else client.tx(status_id)
    data = {
        "id": status.id.hex(),
        "status": status.status,
        "height": status.height,
        "index": status.index,
        "reason": status.reason,
        "signers": []
        if status.certificate is None
        else [c.sender for c in status.certificate.commits],
    }
    _emit(
        settings,
        data,
        lambda c: c.print(
            f"{data['id']}: [bold]{status.status}[/]"
            + (
                f" at height {status.height}, index {status.index}"
                if status.height is not None
                else ""
            )
            + (f" ({status.reason})" if status.reason else "")
            + (f", signed by validators {data['signers']}" if data["signers"] else "")
        ),
    )


@tx.command("status")
@click.argument("tx_id")
@json_option
@click.pass_context
@user_errors
def tx_status(ctx: click.Context, tx_id: str, json_flag: bool) -> None:
    _show_status(
        _settings(ctx, json_flag), _hex_arg(tx_id, 32, "ID"), _settings(ctx).client(), wait=False
    )


@tx.command("wait")
@click.argument("tx_id")
@json_option
@click.pass_context
@user_errors
def tx_wait(ctx: click.Context, tx_id: str, json_flag: bool) -> None:
    _show_status(
        _settings(ctx, json_flag), _hex_arg(tx_id, 32, "ID"), _settings(ctx).client(), wait=True
    )


@click.group()
def chain() -> None:
    """The chain as one node sees it."""


@chain.command("status")
@json_option
@click.pass_context
@user_errors
def chain_status(ctx: click.Context, json_flag: bool) -> None:
    settings = _settings(ctx, json_flag)
    status = settings.client().status()
    data = {
        "height": status.height,
        "view": status.view,
        "primary": status.primary,
        "state_root": status.state_root.hex(),
        "peers_connected": sum(p.connected for p in status.peers),
        "mempool_txs": status.mempool_txs,
        "stopped": status.stopped,
    }
    _emit(
        settings,
        data,
        lambda c: c.print(
            f"height {status.height}  view {status.view}  primary {status.primary}\n"
            f"state root {data['state_root']}\npeers connected {data['peers_connected']}"
            f"/{len(status.peers)}  mempool {status.mempool_txs} txs"
        ),
    )


@chain.command("block")
@click.argument("height", type=click.IntRange(min=0))
@json_option
@click.pass_context
@user_errors
def chain_block(ctx: click.Context, height: int, json_flag: bool) -> None:
    settings = _settings(ctx, json_flag)
    block = settings.client().block(height)
    data = {
        "height": block.height,
        "hash": block.hash.hex(),
        "txs": [
            {
                "id": t.id.hex(),
                "kind": t.kind,
                "signer": None if t.signer is None else t.signer.hex(),
                "inputs": [i.hex() for i in t.inputs],
                "outputs": [
                    {"id": o.id.hex(), "owner": o.owner.hex(), "commitment": o.commitment.hex()}
                    for o in t.outputs
                ],
            }
            for t in block.txs
        ],
    }

    def render(console: Console) -> None:
        console.print(f"block {block.height}  {data['hash']}")
        table = Table("tx", "kind", "inputs", "outputs", "amounts")
        for t in block.txs:
            table.add_row(
                t.id.hex()[:16] + "…",
                t.kind,
                str(len(t.inputs)),
                str(len(t.outputs)),
                "hidden" if t.outputs else "-",
            )
        console.print(table)

    _emit(settings, data, render)


@chain.command("validators")
@json_option
@click.pass_context
@user_errors
def chain_validators(ctx: click.Context, json_flag: bool) -> None:
    settings = _settings(ctx, json_flag)
    validators = settings.client().validators()
    data = [
        {"index": v.index, "name": v.name, "public_key": v.public_key.hex()} for v in validators
    ]
    rows = [(str(v.index), v.name, v.public_key.hex()) for v in validators]
    _emit_table(settings, data, ("index", "name", "public key"), rows)


# --- audit ---------------------------------------------------------------------------------


@click.command()
@wallet_option
@json_option
@click.pass_context
@user_errors
def audit_command(ctx: click.Context, wallet_dir: Path, json_flag: bool) -> None:
    """As the regulator: open every audit memo, check every owner memo against its owner's
    memo key, total the unspent value per asset against its public issued total, and list
    memo mismatches (a memo that does not open its commitment) with the tx id and signer."""
    settings = _settings(ctx, json_flag)
    client = settings.client()
    regulator = WalletDir.open(wallet_dir, read_state=False)
    chain_info = client.chain()
    auditor = Auditor([regulator.wallet.memo_private_key])
    loans = LoanTracker("auditor", regulator.wallet.memo_private_key)
    spent: set[bytes] = set()
    signers: dict[bytes, bytes] = {}
    for height in range(1, chain_info.height + 1):
        try:
            block = decode_block(client.block_raw(height))
        except TxRejected as exc:
            raise VeilApiError("BAD_RESPONSE", f"block {height} does not decode: {exc}") from None
        auditor.scan(block, chain_info.chain_id)
        loans.scan(block, chain_info.chain_id)
        for tx_id, body in confidential_bodies(block.txs, chain_info.chain_id):
            signers[tx_id] = signer_of(body)
            if not isinstance(body, IssueBody):  # transfers, loan originations and repays
                spent.update(body.inputs)
    auditor.check_owner_memos(ApiMemoKeys(client))
    totals = []
    for asset in chain_info.assets:
        unspent = [
            o for oid, o in auditor.openings.items() if oid not in spent and o.asset == asset.id
        ]
        value = sum(o.value for o in unspent)
        totals.append(
            {
                "asset": asset.symbol,
                "issued_total": asset.issued_total,
                "unspent_total": value,
                "unspent_outputs": len(unspent),
                "balanced": value == asset.issued_total,
            }
        )
    mismatches = [
        {
            "tx_id": m.tx_id.hex(),
            "output_id": m.output_id.hex(),
            "reason": m.reason,
            "signer": signers.get(m.tx_id, b"").hex(),
        }
        for m in sorted(auditor.bad.values(), key=lambda m: m.output_id)
    ]
    symbols = {asset.id: asset.symbol for asset in chain_info.assets}
    data = {
        "height": chain_info.height,
        "assets": totals,
        "mismatches": mismatches,
        "loans": loan_audit_json(loans, symbols),
    }

    def render(console: Console) -> None:
        table = Table(
            "asset",
            "issued",
            "unspent (opened)",
            "outputs",
            "balanced",
            title=f"audit at height {chain_info.height}",
        )
        for row in totals:
            table.add_row(
                str(row["asset"]),
                f"{row['issued_total']:,}",
                f"{row['unspent_total']:,}",
                str(row["unspent_outputs"]),
                "yes" if row["balanced"] else "[red]NO[/]",
            )
        console.print(table)
        for m in mismatches:
            console.print(
                f"[red]mismatch[/] tx {m['tx_id']} signer {m['signer']}: {m['reason']}",
                soft_wrap=True,
            )
        if not mismatches:
            console.print("no memo mismatches")
        render_loan_audit(console, data["loans"])  # type: ignore[arg-type]

    _emit(settings, data, render)
