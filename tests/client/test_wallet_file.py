"""The wallet directory: 0600 files written atomically, a scan of the served chain that
finds the right outputs and history, rescan, refusal of another chain, and no amount
or opening ever sent to the node."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from client.sdk import Client, _Answer, _Call
from client.wallet_file import (
    WALLET_FILE_NAME,
    WalletDir,
    WalletFileError,
    write_private_file,
)
from tests.api.chain_fixture import ApiChain
from tests.client.served_node import ServedNode
from tests.spec.ledger_world import USD, Party


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _wallet_of(party: Party, path: Path) -> WalletDir:
    return WalletDir.create(path, party.identity, party.memo_private)


def test_create_writes_private_files_and_never_overwrites(tmp_path: Path) -> None:
    home = tmp_path / "w"
    created = WalletDir.create(home)
    assert _mode(home) == 0o700
    for name in ("signing.key", "memo.key", WALLET_FILE_NAME):
        assert _mode(home / name) == 0o600
    reopened = WalletDir.open(home)
    assert reopened.public_key == created.public_key
    assert reopened.memo_public_key == created.memo_public_key
    assert reopened.state.scan_height == 0 and reopened.balances() == {}
    with pytest.raises(WalletFileError, match="refusing to overwrite"):
        WalletDir.create(home)


def test_sync_finds_outputs_history_and_survives_reopen(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path
) -> None:
    client = Client(served.url)
    alice = _wallet_of(api_chain.world.alice, tmp_path / "alice")
    assert alice.sync(client) == 2
    assert alice.balances() == {USD: 5 + 242}
    kinds = [(e.height, e.kind, e.amount) for e in alice.state.history]
    assert sorted(kinds) == sorted(
        [
            (1, "received", 4_242_424_242),
            (1, "received", 5),
            (2, "spent", 4_242_424_242),
            (2, "received", 242),
        ]
    )
    spent = next(e for e in alice.state.history if e.kind == "spent")
    assert spent.tx_id == api_chain.transfer.tx_id
    reopened = WalletDir.open(tmp_path / "alice")
    assert reopened.balances() == alice.balances()
    assert reopened.state.scan_hash == client.block(2).hash
    assert _mode(tmp_path / "alice" / WALLET_FILE_NAME) == 0o600

    served.submit_and_commit(api_chain.fresh_issue.encode())  # pays bob, not alice
    bob = _wallet_of(api_chain.world.bob, tmp_path / "bob")
    assert bob.sync(client) == 3
    assert bob.balances() == {USD: 4_242_424_000 + 31_337_313_373 + 2}
    assert reopened.sync(client) == 3 and reopened.balances() == {USD: 247}


def test_rescan_rebuilds_a_damaged_wallet_file(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path
) -> None:
    client = Client(served.url)
    alice = _wallet_of(api_chain.world.alice, tmp_path / "alice")
    alice.sync(client)
    wallet_file = tmp_path / "alice" / WALLET_FILE_NAME
    wallet_file.write_text("{ not json")
    with pytest.raises(WalletFileError, match="not readable as JSON"):
        WalletDir.open(tmp_path / "alice")
    rebuilt = WalletDir.open(tmp_path / "alice", read_state=False)
    assert rebuilt.rescan(client) == 2
    assert WalletDir.open(tmp_path / "alice").balances() == {USD: 247}


def test_another_chain_is_refused(served: ServedNode, api_chain: ApiChain, tmp_path: Path) -> None:
    client = Client(served.url)
    alice = _wallet_of(api_chain.world.alice, tmp_path / "alice")
    alice.sync(client)
    alice.state.chain_id = b"\x09" * 32
    with pytest.raises(WalletFileError, match="rescan"):
        alice.sync(client)
    alice.state.chain_id = api_chain.world.chain_id
    alice.state.scan_hash = b"\x00" * 32
    with pytest.raises(WalletFileError, match="not the one this wallet scanned"):
        alice.sync(client)


def test_sync_sends_nothing_but_reads(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[_Call] = []
    original = Client._once

    def recording(self: Client, call: _Call) -> _Answer:
        sent.append(call)
        return original(self, call)

    monkeypatch.setattr(Client, "_once", recording)
    alice = _wallet_of(api_chain.world.alice, tmp_path / "alice")
    alice.rescan(Client(served.url))
    assert sent and all(c.method == "GET" and c.body is None for c in sent)
    assert not any("242" in c.url("") for c in sent)


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    write_private_file(target, json.dumps({"old": True}), overwrite=True)

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_private_file(target, json.dumps({"new": True}), overwrite=True)
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_open_refuses_bad_directories(tmp_path: Path) -> None:
    with pytest.raises(WalletFileError, match="no such wallet directory"):
        WalletDir.open(tmp_path / "missing")
    home = tmp_path / "w"
    WalletDir.create(home)
    (home / WALLET_FILE_NAME).chmod(0o644)
    with pytest.raises(WalletFileError, match="too open"):
        WalletDir.open(home)
    (home / WALLET_FILE_NAME).chmod(0o600)
    (home / "memo.key").write_text(
        json.dumps({"kind": "veil-memo-key", "version": 1, "private_key": "zz"})
    )
    with pytest.raises(WalletFileError, match="memo key"):
        WalletDir.open(home)
