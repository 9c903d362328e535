"""A wallet directory: the account's keys and its wallet file (issue 10 "The wallet file").

``DIR/signing.key`` is the ed25519 key file (ledger.identity), ``DIR/memo.key``
the X25519 memo key, ``DIR/wallet.json`` what scanning the chain found: the
owned unspent outputs with their openings, the history, the loans taken and
made with their outstanding openings (``client.wallet_loans``) and the scan height.
Every file is mode 0600 and written atomically (temp file, fsync, rename), so
a crash leaves the old file or the new one, never half of one. The wallet file
is a cache: ``rescan`` rebuilds it from the chain. Nothing here sends an amount
or an opening anywhere: the node only ever sees raw-block reads.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from client.sdk import Client, VeilApiError
from client.wallet_loans import WalletLoans
from ledger.block import block_hash, decode_block
from ledger.identity import KeyFileError, SigningIdentity
from ledger.reasons import TxRejected
from ledger.tx import IssueBody, confidential_bodies
from ledger.wallet import OwnedOutput, Wallet, balances
from privacy.memo import Opening, generate_memo_keypair

SIGNING_KEY_NAME: Final = "signing.key"
MEMO_KEY_NAME: Final = "memo.key"
WALLET_FILE_NAME: Final = "wallet.json"
MEMO_KEY_KIND: Final = "veil-memo-key"
WALLET_KIND: Final = "veil-wallet"
FORMAT_VERSION: Final = 1
WALLET_FORMAT_VERSION: Final = 2
"""2: the wallet file holds the account's loans; a version-1 file is rescanned."""


class WalletFileError(Exception):
    """A wallet directory that cannot be used, with one line saying why."""


def write_private_file(path: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` to ``path`` with mode 0600: temp file, fsync, rename, fsync the dir."""
    if not overwrite and path.exists():
        raise WalletFileError(f"{path} already exists; refusing to overwrite it")
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)  # an older temp file may have had another mode
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_private_json(path: Path, kind: str, version: int = FORMAT_VERSION) -> dict[str, object]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise WalletFileError(f"{path}: no such file (is this a wallet directory?)") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WalletFileError(f"{path}: permissions {oct(mode & 0o777)} are too open; use 0600")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WalletFileError(f"{path}: not readable as JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict) or document.get("kind") != kind:
        raise WalletFileError(f"{path}: not a {kind} file")
    if document.get("version") != version:
        raise WalletFileError(f"{path}: unsupported version {document.get('version')!r}")
    return document


HistoryKind = Literal["received", "spent"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    height: int
    tx_id: bytes
    kind: HistoryKind
    output_id: bytes
    asset: bytes
    amount: int = field(repr=False)


@dataclass(slots=True)
class WalletState:
    """What the chain told this wallet, up to ``scan_height`` (whose hash it remembers)."""

    chain_id: bytes | None = None
    scan_height: int = 0
    scan_hash: bytes | None = None
    history: list[HistoryEntry] = field(default_factory=list)


def _output_json(output: OwnedOutput) -> dict[str, object]:
    opening = output.opening
    return {
        "output_id": output.output_id.hex(),
        "tx_id": output.tx_id.hex(),
        "commitment": output.commitment.hex(),
        "asset": opening.asset.hex(),
        "value": opening.value,
        "blinding": f"{opening.blinding:064x}",
        "note": opening.note.hex(),
    }


def _output_from_json(obj: object) -> OwnedOutput:
    if not isinstance(obj, dict):
        raise ValueError("an output is not an object")
    opening = Opening(
        value=int(obj["value"]),
        blinding=int(str(obj["blinding"]), 16),
        asset=bytes.fromhex(str(obj["asset"])),
        note=bytes.fromhex(str(obj["note"])),
    )
    return OwnedOutput(
        bytes.fromhex(str(obj["output_id"])),
        bytes.fromhex(str(obj["tx_id"])),
        bytes.fromhex(str(obj["commitment"])),
        opening,
    )


def _history_json(entry: HistoryEntry) -> dict[str, object]:
    return {
        "height": entry.height,
        "tx_id": entry.tx_id.hex(),
        "kind": entry.kind,
        "output_id": entry.output_id.hex(),
        "asset": entry.asset.hex(),
        "amount": entry.amount,
    }


def _history_from_json(obj: object) -> HistoryEntry:
    if not isinstance(obj, dict) or obj.get("kind") not in ("received", "spent"):
        raise ValueError("a history entry is not an object of a known kind")
    return HistoryEntry(
        int(obj["height"]),
        bytes.fromhex(str(obj["tx_id"])),
        obj["kind"],
        bytes.fromhex(str(obj["output_id"])),
        bytes.fromhex(str(obj["asset"])),
        int(obj["amount"]),
    )


class WalletDir:
    """One account's wallet directory, opened."""

    def __init__(self, path: Path, wallet: Wallet, state: WalletState) -> None:
        self.path = path
        self.wallet = wallet
        self.state = state
        self.loans = WalletLoans.empty(wallet.memo_private_key, wallet.public_key)

    @property
    def public_key(self) -> bytes:
        return self.wallet.public_key

    @property
    def memo_public_key(self) -> bytes:
        return self.wallet.memo_public_key

    # --- files ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        identity: SigningIdentity | None = None,
        memo_private: bytes | None = None,
    ) -> WalletDir:
        """Keys (new unless given) and an empty wallet file in ``path`` (created 0700);
        never overwrites."""
        if (path / SIGNING_KEY_NAME).exists() or (path / WALLET_FILE_NAME).exists():
            raise WalletFileError(f"{path} already holds a wallet; refusing to overwrite it")
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise WalletFileError(f"{path}: cannot create the directory ({exc.strerror})") from None
        identity = identity or SigningIdentity.generate()
        memo_private = memo_private or generate_memo_keypair()[0]
        try:
            identity.save(path / SIGNING_KEY_NAME)
        except KeyFileError as exc:
            raise WalletFileError(str(exc)) from None
        memo_document = {
            "kind": MEMO_KEY_KIND,
            "version": FORMAT_VERSION,
            "private_key": memo_private.hex(),
        }
        write_private_file(path / MEMO_KEY_NAME, json.dumps(memo_document) + "\n", overwrite=False)
        opened = cls(path, Wallet(identity, memo_private), WalletState())
        opened.save()
        return opened

    @classmethod
    def open(cls, path: Path, *, read_state: bool = True) -> WalletDir:
        """Open the keys and (unless ``read_state`` is False, as for a rescan of a
        damaged file) the wallet file."""
        if not path.is_dir():
            raise WalletFileError(f"{path}: no such wallet directory")
        try:
            identity = SigningIdentity.load(path / SIGNING_KEY_NAME)
        except KeyFileError as exc:
            raise WalletFileError(str(exc)) from None
        memo_document = _read_private_json(path / MEMO_KEY_NAME, MEMO_KEY_KIND)
        try:
            memo_private = bytes.fromhex(str(memo_document["private_key"]))
        except ValueError:
            memo_private = b""
        if len(memo_private) != 32:
            raise WalletFileError(f"{path / MEMO_KEY_NAME}: not a 32-byte hex memo key")
        wallet = Wallet(identity, memo_private)
        if not read_state:
            return cls(path, wallet, WalletState())
        try:
            document = _read_private_json(
                path / WALLET_FILE_NAME, WALLET_KIND, WALLET_FORMAT_VERSION
            )
        except WalletFileError as exc:
            raise WalletFileError(f"{exc}; `veil wallet rescan` rebuilds it") from None
        try:
            for item in list(document["unspent"]):  # type: ignore[call-overload]
                output = _output_from_json(item)
                wallet.unspent[output.output_id] = output
            chain_id = document["chain_id"]
            scan_hash = document["scan_hash"]
            state = WalletState(
                chain_id=None if chain_id is None else bytes.fromhex(str(chain_id)),
                scan_height=int(document["scan_height"]),  # type: ignore[call-overload]
                scan_hash=None if scan_hash is None else bytes.fromhex(str(scan_hash)),
                history=[_history_from_json(e) for e in document["history"]],  # type: ignore[attr-defined]
            )
            opened = cls(path, wallet, state)
            opened.loans.load_json(document["loans"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WalletFileError(
                f"{path / WALLET_FILE_NAME}: damaged ({exc.__class__.__name__}); "
                "run `veil wallet rescan` to rebuild it from the chain"
            ) from None
        return opened

    def save(self) -> None:
        state = self.state
        document = {
            "kind": WALLET_KIND,
            "version": WALLET_FORMAT_VERSION,
            "public_key": self.public_key.hex(),
            "chain_id": None if state.chain_id is None else state.chain_id.hex(),
            "scan_height": state.scan_height,
            "scan_hash": None if state.scan_hash is None else state.scan_hash.hex(),
            "unspent": [
                _output_json(o)
                for o in sorted(self.wallet.unspent.values(), key=lambda o: o.output_id)
            ],
            "history": [_history_json(e) for e in state.history],
            "loans": self.loans.to_json(),
        }
        write_private_file(
            self.path / WALLET_FILE_NAME, json.dumps(document, indent=2) + "\n", overwrite=True
        )

    # --- the chain -----------------------------------------------------------------------

    def balances(self) -> dict[bytes, int]:
        return balances(self.wallet.unspent.values())

    def sync(self, client: Client) -> int:
        """Scan the blocks after ``scan_height`` up to the node's height; save; the new height.

        A node of another chain, or whose block at ``scan_height`` is not the one
        scanned, is refused: the wallet would mix two histories."""
        chain = client.chain()
        state = self.state
        if state.chain_id is not None and state.chain_id != chain.chain_id:
            raise WalletFileError(
                f"the node serves chain {chain.chain_id.hex()[:16]}…, this wallet belongs to "
                f"{state.chain_id.hex()[:16]}…; run `veil wallet rescan` if the chain was reset"
            )
        if state.scan_height > chain.height:
            raise WalletFileError(
                f"the wallet has scanned to height {state.scan_height} but the node is at "
                f"{chain.height}; run `veil wallet rescan` if the chain was reset"
            )
        if state.scan_height > 0 and client.block(state.scan_height).hash != state.scan_hash:
            raise WalletFileError(
                f"the node's block {state.scan_height} is not the one this wallet scanned; "
                "run `veil wallet rescan`"
            )
        state.chain_id = chain.chain_id
        for height in range(state.scan_height + 1, chain.height + 1):
            self._scan(client, height, chain.chain_id)
        self.save()
        return state.scan_height

    def _scan(self, client: Client, height: int, chain_id: bytes) -> None:
        raw = client.block_raw(height)
        try:
            block = decode_block(raw)
        except TxRejected as exc:
            raise VeilApiError("BAD_RESPONSE", f"block {height} does not decode: {exc}") from None
        if block.header.height != height:
            raise VeilApiError("BAD_RESPONSE", f"asked for block {height}, got another")
        before = dict(self.wallet.unspent)
        result = self.wallet.scan(block, chain_id)
        self.loans.scan(block, chain_id)
        for output in result.received:
            self.state.history.append(
                HistoryEntry(
                    height, output.tx_id, "received", output.output_id, output.asset, output.value
                )
            )
        spender = {
            input_id: tx_id
            for tx_id, body in confidential_bodies(block.txs, chain_id)
            if not isinstance(body, IssueBody)  # transfers, loan originations and repays
            for input_id in body.inputs
        }
        for output_id in result.spent:
            gone = before.get(output_id)
            if gone is not None:
                self.state.history.append(
                    HistoryEntry(
                        height,
                        spender.get(output_id, b""),
                        "spent",
                        output_id,
                        gone.asset,
                        gone.value,
                    )
                )
        self.state.scan_height = height
        self.state.scan_hash = block_hash(block.header, chain_id)

    def rescan(self, client: Client) -> int:
        """Forget everything scanned and rebuild the wallet file from block 1."""
        self.wallet.unspent.clear()
        self.wallet.unreadable.clear()
        self.state = WalletState()
        self.loans = WalletLoans.empty(self.wallet.memo_private_key, self.public_key)
        return self.sync(client)
