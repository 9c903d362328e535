"""The genesis: who runs the chain, who may issue what, and the consensus parameters.

Two forms of the same content:

* a ``Genesis`` record, whose canonical encoding is hashed into the **chain id**:
  ``chain_id = SHA-256(encode((b"veil/genesis/v1", genesis.encode())))``. Every
  signature in the system covers the chain id (``ledger.identity``), so a tx or
  vote made for one genesis never verifies on another chain;
* a JSON file for humans and tools (hex for bytes, field names as keys), which
  ``load_genesis`` parses *strictly* (unknown or missing keys are refused) back
  into the record. The JSON layout is never hashed, only the record is.

Member banks are also registered accounts (their ed25519 key owns outputs and
their X25519 key receives memos), so a bank can issue to itself without a
separate registration. Every memo key (members, accounts, the auditor) must be
usable: a small-order X25519 point is refused (``ledger.memo_key``). Genesis
accounts carry no proof of possession: the genesis as a whole is agreed by
every member out of band, which is what a ``register_account`` PoP stands in
for on chain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from ledger.codec import U32, U64, Bytes32, MaxLen, Record, encode_value
from ledger.memo_key import MEMO_KEY_BYTES, memo_key_problem

GENESIS_TAG = b"veil/genesis/v1"
GENESIS_VERSION = 1
MAX_NAME_CHARS = 64
MAX_ENDPOINT_CHARS = 256
MIN_VALIDATORS = 4
"""PBFT with one byzantine replica tolerated: n = 3f+1 with f = 1."""

Name = Annotated[str, MaxLen(MAX_NAME_CHARS)]
Endpoint = Annotated[str, MaxLen(MAX_ENDPOINT_CHARS)]


class GenesisError(ValueError):
    """The genesis file or record is inconsistent (duplicate keys, unknown issuer...)."""


@dataclass(frozen=True, slots=True)
class ValidatorInfo(Record):
    """A PBFT replica. ``http_endpoint``/``peer_endpoint`` may be empty (set in node config)."""

    name: Name
    public_key: Bytes32
    http_endpoint: Endpoint
    peer_endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class MemberInfo(Record):
    """A consortium bank: signs governance, registers accounts, may issue its assets."""

    name: Name
    public_key: Bytes32
    memo_public_key: Bytes32
    """X25519 key that receives the bank's output memos."""


@dataclass(frozen=True, slots=True)
class AccountInfo(Record):
    """A client account registered at genesis by a member bank."""

    public_key: Bytes32
    memo_public_key: Bytes32
    registered_by: Bytes32


@dataclass(frozen=True, slots=True)
class AssetInfo(Record):
    """A deposit token: a 32-byte id, a display symbol and the one member that issues it."""

    asset_id: Bytes32
    symbol: Name
    issuer: Bytes32


@dataclass(frozen=True, slots=True)
class ConsensusParams(Record):
    checkpoint_interval_blocks: U32
    watermark_window_blocks: U32
    request_timeout_ms: U32
    view_change_timeout_ms: U32
    max_block_txs: U32
    max_tx_bytes: U32
    max_timestamp_skew_ms: U64
    """How far a proposal's timestamp may lead the LOCAL clock of a backup deciding
    whether to vote for it (``ledger.block.check_proposal_timestamp``). It is not
    a bound on the gap from the parent's timestamp, which may be any size, and
    not part of replay: ``apply_block`` only requires a timestamp not before the
    parent's, since a check against a clock would make old blocks invalid."""


DEFAULT_PARAMS = ConsensusParams(
    checkpoint_interval_blocks=16,
    watermark_window_blocks=64,
    request_timeout_ms=2_000,
    view_change_timeout_ms=4_000,
    max_block_txs=256,
    max_tx_bytes=64 * 1024,
    max_timestamp_skew_ms=30_000,
)


@dataclass(frozen=True, slots=True)
class Genesis(Record):
    version: U32
    chain_name: Name
    genesis_time_ms: U64
    validators: tuple[ValidatorInfo, ...]
    members: tuple[MemberInfo, ...]
    accounts: tuple[AccountInfo, ...]
    assets: tuple[AssetInfo, ...]
    auditor_memo_public_key: Bytes32
    params: ConsensusParams

    def __post_init__(self) -> None:
        check_genesis(self)

    @property
    def chain_id(self) -> bytes:
        return chain_id_of(self)


_CHAIN_ID_CACHE: dict[int, tuple[Genesis, bytes]] = {}


def chain_id_of(genesis: Genesis) -> bytes:
    """SHA-256 of the domain-tagged canonical genesis encoding.

    Cached per genesis object (the rules ask for it once per tx, and encoding
    the genesis costs about a millisecond); the cache holds the object itself,
    so its ``id`` cannot be reused while the entry exists.
    """
    cached = _CHAIN_ID_CACHE.get(id(genesis))
    if cached is not None and cached[0] is genesis:
        return cached[1]
    chain_id = hashlib.sha256(encode_value((GENESIS_TAG, genesis.encode()))).digest()
    if len(_CHAIN_ID_CACHE) >= 64:
        _CHAIN_ID_CACHE.clear()
    _CHAIN_ID_CACHE[id(genesis)] = (genesis, chain_id)
    return chain_id


def _unique(values: list[bytes], what: str) -> None:
    if len(set(values)) != len(values):
        raise GenesisError(f"duplicate {what}")


def _check_validator_count(count: int) -> None:
    # What consensus's ReplicaConfig refuses, refused here first: a genesis no
    # replica could run must not get a chain id. PBFT needs n = 3f+1 with f >= 1;
    # any other n only adds replicas that raise no fault tolerance.
    faulty = (count - 1) // 3
    if count < MIN_VALIDATORS or count != 3 * faulty + 1:
        raise GenesisError(f"need n = 3f+1 >= {MIN_VALIDATORS} validators, got {count}")


def _check_watermark_window(params: ConsensusParams) -> None:
    interval = params.checkpoint_interval_blocks
    window = params.watermark_window_blocks
    if interval == 0:
        raise GenesisError("the checkpoint interval must be positive")
    # The primary keeps proposing while the last checkpoint becomes stable only if
    # the window holds at least two intervals (the rule of ReplicaConfig).
    if window < 2 * interval or window % interval:
        raise GenesisError(
            f"watermark window {window} is not a multiple (2x or more) of the "
            f"checkpoint interval {interval}"
        )


def check_genesis(genesis: Genesis) -> None:
    """Raise ``GenesisError`` unless the genesis is self-consistent."""
    if genesis.version != GENESIS_VERSION:
        raise GenesisError(f"genesis version {genesis.version} is not {GENESIS_VERSION}")
    _check_validator_count(len(genesis.validators))
    if not genesis.members:
        raise GenesisError("a chain needs at least one member bank")
    _unique([v.public_key for v in genesis.validators], "validator key")
    member_keys = [m.public_key for m in genesis.members]
    _unique(member_keys, "member key")
    account_keys = member_keys + [a.public_key for a in genesis.accounts]
    _unique(account_keys, "account key (members are accounts too)")
    _unique([a.asset_id for a in genesis.assets], "asset id")
    members = set(member_keys)
    for account in genesis.accounts:
        if account.registered_by not in members:
            raise GenesisError("an account is registered by a non-member")
    for asset in genesis.assets:
        if asset.issuer not in members:
            raise GenesisError(f"asset {asset.symbol!r} has a non-member issuer")
    params = genesis.params
    if params.max_block_txs == 0 or params.max_tx_bytes == 0:
        raise GenesisError("max_block_txs and max_tx_bytes must be positive")
    _check_watermark_window(params)
    for key in member_keys + [a.public_key for a in genesis.accounts]:
        if key == bytes(32):
            raise GenesisError("the all-zero key is not a valid account key")
    memo_keys = [(f"member {m.name!r}", m.memo_public_key) for m in genesis.members]
    memo_keys += [(f"account {a.public_key.hex()}", a.memo_public_key) for a in genesis.accounts]
    memo_keys.append(("the auditor", genesis.auditor_memo_public_key))
    for who, memo_key in memo_keys:
        problem = memo_key_problem(memo_key)
        # A wrong length is left to the codec, which refuses to encode the record.
        if problem is not None and len(memo_key) == MEMO_KEY_BYTES:
            raise GenesisError(f"memo key of {who}: {problem}")


def asset_id_for(issuer_public_key: bytes, symbol: str) -> bytes:
    """A conventional asset id: SHA-256 of the tag, the issuer key and the symbol."""
    return hashlib.sha256(
        encode_value((b"veil/asset-id/v1", issuer_public_key, symbol.encode()))
    ).digest()


# --- JSON form ------------------------------------------------------------------


def _to_json(value: object) -> Any:
    if isinstance(value, Record):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def genesis_to_json(genesis: Genesis) -> str:
    document = {"kind": "veil-genesis", **_to_json(genesis)}
    return json.dumps(document, indent=2) + "\n"


def _from_json(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:
        return _from_json(get_args(tp)[0], value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise GenesisError(f"{where}: expected a list")
        item_type = get_args(tp)[0]
        return tuple(_from_json(item_type, v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and issubclass(tp, Record):
        if not isinstance(value, dict):
            raise GenesisError(f"{where}: expected an object")
        hints = get_type_hints(tp, include_extras=True)
        names = [f.name for f in dataclasses.fields(tp)]
        if set(value) != set(names):
            missing = sorted(set(names) - set(value))
            extra = sorted(set(value) - set(names))
            raise GenesisError(f"{where}: missing keys {missing}, unknown keys {extra}")
        fields = {n: _from_json(hints[n], value[n], f"{where}.{n}") for n in names}
        return tp(**fields)
    if tp is bytes:
        if not isinstance(value, str):
            raise GenesisError(f"{where}: expected a hex string")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise GenesisError(f"{where}: not hex") from None
    if tp is int:
        if type(value) is not int:
            raise GenesisError(f"{where}: expected an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise GenesisError(f"{where}: expected a string")
        return value
    raise GenesisError(f"{where}: unsupported type {tp!r}")


def genesis_from_json(text: str) -> Genesis:
    """Parse the JSON form strictly and check it through the canonical record."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError, but also an integer over Python's digit limit (ValueError)
        # and nesting deeper than the parser recurses (RecursionError).
        raise GenesisError(f"genesis is not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(document, dict) or document.pop("kind", None) != "veil-genesis":
        raise GenesisError('genesis JSON must be an object with "kind": "veil-genesis"')
    genesis = _from_json(Genesis, document, "genesis")
    # Round-trip through the canonical codec: enforces every fixed length and range.
    try:
        return Genesis.decode(genesis.encode())
    except (ValueError, TypeError) as exc:
        raise GenesisError(f"genesis does not encode canonically: {exc}") from None


def load_genesis(path: Path) -> Genesis:
    return genesis_from_json(path.read_text(encoding="utf-8"))


def save_genesis(genesis: Genesis, path: Path) -> None:
    path.write_text(genesis_to_json(genesis), encoding="utf-8")
