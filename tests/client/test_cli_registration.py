"""``veil bank register-account``: the account's proof of possession made obvious.

Two ways: ``--account-wallet DIR`` (the account's keys are on this machine and sign
the proof here), or the issue's ``--account PK --memo-key HEX`` with ``--pop HEX``,
which ``veil wallet show --registrar BANK_PK`` prints. Every wrong combination is
one line that says what to give."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result

from client.wallet_file import WalletDir
from tests.api.chain_fixture import ApiChain
from tests.client.cli_helpers import veil, wallet_dir_of
from tests.client.served_node import ServedNode
from tests.client.test_cli_commands import _one_line_error


def _registered(served: ServedNode, account: WalletDir) -> bool:
    shown = veil(served, "--json", "wallet", "show", "--wallet", str(account.path))
    assert shown.exit_code == 0, shown.output
    return bool(json.loads(shown.output)["registered"])


def _register(served: ServedNode, bank: Path, *args: str) -> Result:
    return veil(served, "bank", "register-account", "--wallet", str(bank), *args)


def test_register_with_the_account_wallet(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path, auto_commit: None
) -> None:
    bank = wallet_dir_of(api_chain.world.bank_a, tmp_path / "bank")
    account = WalletDir.create(tmp_path / "firm")
    assert not _registered(served, account)
    done = _register(served, bank, "--account-wallet", str(account.path), "--wait")
    assert done.exit_code == 0, done.output
    assert "committed" in done.output
    assert _registered(served, account)


def test_wallet_show_prints_the_proof_the_bank_passes_with_pop(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path, auto_commit: None
) -> None:
    bank = wallet_dir_of(api_chain.world.bank_a, tmp_path / "bank")
    bank_key = api_chain.world.bank_a.key.hex()
    account = WalletDir.create(tmp_path / "firm")
    shown = veil(
        served, "--json", "wallet", "show", "--wallet", str(account.path), "--registrar", bank_key
    )
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["registrar"] == bank_key and len(data["proof_of_possession"]) == 128
    text = veil(served, "wallet", "show", "--wallet", str(account.path), "--registrar", bank_key)
    assert f"--pop {data['proof_of_possession']}" in text.output  # a command to copy
    # `veil wallet pop` prints the same proof.
    pop = veil(served, "wallet", "pop", "--wallet", str(account.path), "--registrar", bank_key)
    assert pop.output.strip() == data["proof_of_possession"]
    done = _register(
        served,
        bank,
        "--account",
        data["public_key"],
        "--memo-key",
        data["memo_public_key"],
        "--pop",
        data["proof_of_possession"],
        "--wait",
    )
    assert done.exit_code == 0, done.output
    assert _registered(served, account)


def test_registration_errors_are_one_line(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path
) -> None:
    world = api_chain.world
    bank = wallet_dir_of(world.bank_a, tmp_path / "bank")
    account = WalletDir.create(tmp_path / "firm")
    pk, memo = account.public_key.hex(), account.memo_public_key.hex()
    _one_line_error(_register(served, bank), "missing the account", "--account-wallet DIR")
    _one_line_error(
        _register(served, bank, "--account", pk, "--memo-key", memo),
        "missing the account's proof of possession (--pop)",
        "veil wallet show --wallet DIR --registrar BANK_PK",
    )
    _one_line_error(
        _register(served, bank, "--account", pk), "(--memo-key, --pop)", "--account-wallet"
    )
    _one_line_error(
        _register(served, bank, "--account-wallet", str(account.path), "--account", pk),
        "--account-wallet replaces --account",
    )
    _one_line_error(
        _register(served, bank, "--account-wallet", str(tmp_path / "nope")),
        "no such wallet directory",
    )
    # A proof made for another bank: refused here, before anything is sent.
    other_bank = world.bank_b.key.hex()
    for_b = veil(served, "wallet", "pop", "--wallet", str(account.path), "--registrar", other_bank)
    _one_line_error(
        _register(served, bank, "--account", pk, "--memo-key", memo, "--pop", for_b.output.strip()),
        "proof of possession",
        f"--registrar {world.bank_a.key.hex()}",
    )
    short_pop = _register(served, bank, "--account", pk, "--memo-key", memo, "--pop", "00" * 3)
    assert short_pop.exit_code == 2 and "Traceback" not in short_pop.output  # a usage error
    assert "--pop must be 64 bytes, got 3" in short_pop.output
    assert not _registered(served, account)
