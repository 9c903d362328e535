"""Blocks: a header that commits to everything, and a body of txs.

Header fields: height, the previous block's hash, the tx root (RFC 6962 Merkle
root over the txs' canonical encodings, ``ledger.merkle``), the state root
*after* the block (``ledger.state_root`` through the store's preview), the
proposer's validator key, the PBFT view, and the primary's timestamp.

The block hash is ``SHA-256(signing_bytes(b"veil/block/v1", chain_id,
header.encode()))``: the header alone identifies the block (the tx root commits
to the body), and the chain id ties it to one genesis. Height 0 is the genesis
itself, whose "hash" is the chain id, so block 1's ``prev_hash`` is the chain id.

The commit certificate (2f+1 consensus signatures) is opaque bytes here and
is stored beside the block, never inside it: the block hash is what it signs.

Timestamps: ``apply_block`` (deterministic replay) only requires
``timestamp_ms >= previous timestamp``. The bounded skew against the local clock
(``ConsensusParams.max_timestamp_skew_ms``) is a proposal-time check that a
backup makes before it votes, ``check_proposal_timestamp``: it depends on the
clock and so cannot be part of replay, where it would make old blocks invalid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ledger.codec import U32, U64, Bytes32, DecodeError, Record
from ledger.genesis import ConsensusParams, Genesis
from ledger.identity import signing_bytes
from ledger.merkle import merkle_root
from ledger.reasons import BlockRejected, Reason
from ledger.tx import Tx

BLOCK_TAG: Final = b"veil/block/v1"
BLOCK_VERSION: Final = 1
MAX_BLOCK_BYTES: Final = 16 << 20
"""The largest encoded block ``decode_block`` accepts. The genesis may allow more txs of
more bytes than fit (``max_block_txs x max_tx_bytes``), so ``execute_batch`` also stops
filling a block at this size (``BLOCK_FULL``)."""
BLOCK_OVERHEAD_BYTES: Final = 175
"""An upper bound on a block's encoding minus its txs' encodings: the outer array (1
byte), the largest header (169) and the largest array header for the txs (5)."""


@dataclass(frozen=True, slots=True)
class BlockHeader(Record):
    version: U32
    height: U64
    prev_hash: Bytes32
    tx_root: Bytes32
    state_root: Bytes32
    proposer: Bytes32
    view: U64
    timestamp_ms: U64


@dataclass(frozen=True, slots=True)
class Block(Record):
    header: BlockHeader
    txs: tuple[Tx, ...]


def _array_header(length: int) -> bytes:
    """msgpack's array header in the spec's shortest form: fixarray, array 16, array 32."""
    if length < 16:
        return bytes((0x90 | length,))
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def encode_block_of_encodings(header: BlockHeader, encoded_txs: Sequence[bytes]) -> bytes:
    """``Block(header, txs).encode()`` from the txs' canonical encodings, byte for byte.

    A record encodes as the msgpack array of its fields, and an array as its
    header followed by its items' encodings, so the block is its two headers
    around the header's encoding and the txs' own bytes. Execution has every tx's
    request payload, which strict decoding proved canonical; encoding each tx
    again from its record was about 1 % of a validator's CPU under attest load."""
    return b"".join(
        (_array_header(2), header.encode(), _array_header(len(encoded_txs)), *encoded_txs)
    )


def block_hash(header: BlockHeader, chain_id: bytes) -> bytes:
    return hashlib.sha256(signing_bytes(BLOCK_TAG, chain_id, header.encode())).digest()


def tx_root(txs: Sequence[Tx]) -> bytes:
    """Merkle root over the txs' full encodings (witnesses included)."""
    return tx_root_of_encodings([tx.encode() for tx in txs])


def tx_root_of_encodings(encoded_txs: Sequence[bytes]) -> bytes:
    """``tx_root`` of the txs these canonical encodings decode to: execution has
    each tx's request bytes, and re-encoding every tx of a block was about 1 % of
    a validator's CPU per attest (issue 9)."""
    return merkle_root(encoded_txs)


def decode_block(data: bytes) -> Block:
    """Strictly decode a block, or raise ``BlockRejected(MALFORMED/TOO_LARGE)``."""
    if len(data) > MAX_BLOCK_BYTES:
        raise BlockRejected(Reason.TOO_LARGE, f"block of {len(data)} bytes")
    try:
        return Block.decode(data, max_bytes=MAX_BLOCK_BYTES)
    except DecodeError as exc:
        raise BlockRejected(Reason.MALFORMED, f"block: {exc}") from None


def primary_for_view(genesis: Genesis, view: int) -> bytes:
    """The PBFT primary of ``view``: validators in genesis order, round robin."""
    validators = genesis.validators
    return validators[view % len(validators)].public_key


@dataclass(frozen=True, slots=True)
class ChainTip:
    """What a header is checked against: the last committed block."""

    height: int
    block_hash: bytes
    timestamp_ms: int


def check_header(header: BlockHeader, tip: ChainTip, genesis: Genesis, txs: Sequence[Tx]) -> None:
    """Header checks that need no state: height, parent, proposer, time, size, tx root."""
    if header.version != BLOCK_VERSION:
        raise BlockRejected(Reason.MALFORMED, f"block version {header.version}")
    if header.height != tip.height + 1:
        raise BlockRejected(Reason.BAD_HEIGHT, f"height {header.height}, tip {tip.height}")
    if header.prev_hash != tip.block_hash:
        raise BlockRejected(Reason.BAD_PREV_HASH, "prev_hash is not the tip's hash")
    if header.proposer != primary_for_view(genesis, header.view):
        raise BlockRejected(Reason.BAD_PROPOSER, f"not the primary of view {header.view}")
    if header.timestamp_ms < tip.timestamp_ms:
        raise BlockRejected(Reason.BAD_TIMESTAMP, "timestamp before the previous block's")
    if len(txs) > genesis.params.max_block_txs:
        raise BlockRejected(Reason.TOO_MANY_TXS, f"{len(txs)} > {genesis.params.max_block_txs}")
    if header.tx_root != tx_root(txs):
        raise BlockRejected(Reason.BAD_TX_ROOT, "tx root does not match the body")


def check_proposal_timestamp(
    header: BlockHeader, tip: ChainTip, now_ms: int, params: ConsensusParams
) -> None:
    """Before voting: the primary's clock may lead ours by at most the skew parameter."""
    if header.timestamp_ms < tip.timestamp_ms:
        raise BlockRejected(Reason.BAD_TIMESTAMP, "timestamp before the previous block's")
    if header.timestamp_ms > now_ms + params.max_timestamp_skew_ms:
        raise BlockRejected(
            Reason.BAD_TIMESTAMP,
            f"timestamp {header.timestamp_ms} more than {params.max_timestamp_skew_ms} ms ahead",
        )
