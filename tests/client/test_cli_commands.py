"""The ``veil`` CLI against the served chain: balances, a transfer, registration and an
issue with --wait, tx/chain reads, the audit, and one clear line for every user error."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import Result

from tests.api.chain_fixture import ApiChain
from tests.client.cli_helpers import veil, wallet_dir_of
from tests.client.served_node import ServedNode


def transfer(
    served: ServedNode, wallet: Path, to: str, asset: str, amount: int, *flags: str
) -> Result:
    """``veil wallet transfer`` of ``amount`` of ``asset`` from ``wallet`` to key ``to``."""
    return veil(
        served,
        "wallet",
        "transfer",
        "--wallet",
        wallet,
        "--to",
        to,
        "--asset",
        asset,
        "--amount",
        str(amount),
        *flags,
    )


def test_wallet_reads_and_a_confidential_transfer(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path, auto_commit: None
) -> None:
    world = api_chain.world
    alice = wallet_dir_of(world.alice, tmp_path / "alice")
    bob = wallet_dir_of(world.bob, tmp_path / "bob")
    balance = veil(served, "wallet", "balance", "--wallet", str(alice), "--json")
    assert balance.exit_code == 0, balance.output
    assert json.loads(balance.output) == [{"asset": "USD.A", "amount": 247}]
    shown = json.loads(veil(served, "--json", "wallet", "show", "--wallet", str(bob)).output)
    assert shown == {
        "public_key": world.bob.key.hex(),
        "memo_public_key": world.bob.memo_public.hex(),
        "registered": True,
    }

    sent = transfer(served, alice, world.bob.key.hex(), "USD.A", 200, "--wait")
    assert sent.exit_code == 0, sent.output
    assert "committed" in sent.output
    bob_balance = json.loads(
        veil(served, "wallet", "balance", "--wallet", str(bob), "--json").output
    )
    assert bob_balance == [{"asset": "USD.A", "amount": 4_242_424_000 + 200}]
    alice_balance = json.loads(
        veil(served, "--json", "wallet", "balance", "--wallet", str(alice)).output
    )
    assert alice_balance == [{"asset": "USD.A", "amount": 47}]
    history = json.loads(veil(served, "--json", "wallet", "history", "--wallet", str(alice)).output)
    assert [h["kind"] for h in history if h["height"] == 3].count("spent") >= 1
    outputs = json.loads(veil(served, "--json", "wallet", "outputs", "--wallet", str(bob)).output)
    assert sorted(o["amount"] for o in outputs) == [200, 4_242_424_000]

    # What the node shows of that block: commitments, never the 200.
    block = veil(served, "--json", "chain", "block", "3")
    assert block.exit_code == 0 and "commitment" in block.output
    tx_id = json.loads(block.output)["txs"][0]["id"]
    status = json.loads(veil(served, "--json", "tx", "status", tx_id).output)
    assert status["status"] == "committed" and status["height"] == 3
    assert len(status["signers"]) >= 3
    assert json.loads(veil(served, "--json", "tx", "wait", tx_id).output)["status"] == "committed"


def test_bank_registers_and_issues_and_the_regulator_audits(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path, auto_commit: None
) -> None:
    world = api_chain.world
    bank = wallet_dir_of(world.bank_a, tmp_path / "bank")
    mallory = wallet_dir_of(world.mallory, tmp_path / "mallory")
    pop = veil(
        served, "wallet", "pop", "--wallet", str(mallory), "--registrar", world.bank_a.key.hex()
    )
    assert pop.exit_code == 0, pop.output
    registered = veil(
        served,
        "bank",
        "register-account",
        "--wallet",
        str(bank),
        "--account",
        world.mallory.key.hex(),
        "--memo-key",
        world.mallory.memo_public.hex(),
        "--pop",
        pop.output.strip(),
        "--wait",
    )
    assert registered.exit_code == 0, registered.output
    issued = veil(
        served,
        "bank",
        "issue",
        "--wallet",
        str(bank),
        "--to",
        world.mallory.key.hex(),
        "--amount",
        "777",
        "--wait",
    )
    assert issued.exit_code == 0, issued.output
    balance = json.loads(
        veil(served, "--json", "wallet", "balance", "--wallet", str(mallory)).output
    )
    assert balance == [{"asset": "USD.A", "amount": 777}]

    regulator = wallet_dir_of(world.auditor, tmp_path / "regulator")
    report = veil(served, "--json", "audit", "--wallet", str(regulator))
    assert report.exit_code == 0, report.output
    usd = next(a for a in json.loads(report.output)["assets"] if a["asset"] == "USD.A")
    assert usd["issued_total"] == usd["unspent_total"] == 4_242_424_242 + 5 + 9_876_543_211 + 777
    assert usd["balanced"] and json.loads(report.output)["mismatches"] == []
    chain_status = json.loads(veil(served, "--json", "chain", "status").output)
    assert chain_status["height"] == 4
    names = [v["index"] for v in json.loads(veil(served, "--json", "chain", "validators").output)]
    assert names == [0, 1, 2, 3]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0]


def test_user_errors_are_one_line(served: ServedNode, api_chain: ApiChain, tmp_path: Path) -> None:
    world = api_chain.world
    alice = wallet_dir_of(world.alice, tmp_path / "alice")
    _one_line_error(
        veil(served, "wallet", "balance", "--wallet", str(tmp_path / "nope")),
        "no such wallet directory",
    )
    _one_line_error(veil(served, "wallet", "new", str(alice)), "refusing to overwrite")
    _one_line_error(
        transfer(served, alice, "ab" * 32, "USD.A", 1),
        "ACCOUNT_NOT_FOUND",
    )
    _one_line_error(
        transfer(served, alice, world.bob.key.hex(), "USD.A", 10000),
        "insufficient funds",
    )
    _one_line_error(
        transfer(served, alice, world.bob.key.hex(), "GOLD", 1),
        "unknown asset",
    )
    _one_line_error(veil(served, "tx", "status", "01" * 32), "TX_NOT_FOUND")
    _one_line_error(veil(served, "chain", "block", "99"), "BLOCK_NOT_FOUND")
    _one_line_error(
        veil(
            served,
            "bank",
            "issue",
            "--wallet",
            str(alice),
            "--to",
            world.bob.key.hex(),
            "--amount",
            "5",
        ),
        "issues no asset",
    )
    (alice / "wallet.json").write_text("garbage")
    _one_line_error(veil(served, "wallet", "balance", "--wallet", str(alice)), "rescan")
    rescanned = veil(served, "wallet", "rescan", "--wallet", str(alice))
    assert rescanned.exit_code == 0 and "height 2" in rescanned.output
    down = f"http://127.0.0.1:{_closed_port()}"
    _one_line_error(veil(down, "chain", "status"), "NODE_UNREACHABLE")
    _one_line_error(veil("not-a-url", "chain", "status"), "INVALID_NODE_URL")
    bad_hex = veil(served, "tx", "status", "xyz")
    assert bad_hex.exit_code == 2 and "Traceback" not in bad_hex.output


def test_without_json_the_reads_print_tables_of_the_same_cells(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path
) -> None:
    alice = wallet_dir_of(api_chain.world.alice, tmp_path / "alice")
    balance = veil(served, "wallet", "balance", "--wallet", alice).output
    assert "balance at height" in balance and "│ USD.A │ 247 " in balance
    outputs = veil(served, "wallet", "outputs", "--wallet", alice).output
    assert "┃ output " in outputs and "│ USD.A │ 242 " in outputs and "│ USD.A │ 5 " in outputs
    history = veil(served, "wallet", "history", "--wallet", alice).output
    assert (
        "│ received │ USD.A │ +242 " in history and "│ spent    │ USD.A │ -4,242,424,242" in history
    )
    validators = veil(served, "chain", "validators").output
    assert all(f"│ {i}     │ validator-{i} │" in validators for i in range(4))
