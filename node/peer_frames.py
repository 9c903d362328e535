"""Frames between validators: kinds, records and the length-prefixed wire form.

A frame on the wire is a 4-byte big-endian body length, then the body: the
canonical encoding (``ledger.codec``) of ``(kind, fields)``. The length comes
first so a receiver refuses an oversize frame from its header, before it
buffers the body. Every field is checked by its record type (fixed lengths,
64-bit ranges), and a body decodes only if it is the canonical encoding, so no
frame has two encodings.

Payloads the peer protocol does not interpret (a consensus message, a tx, a
batch, a block) stay opaque bytes here; the runtime decodes them with
``consensus/wire.py`` and ``ledger/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Annotated

from consensus.wire import MAX_WIRE_BYTES
from ledger.codec import (
    U32,
    U64,
    Bytes32,
    Bytes64,
    DecodeError,
    FixedLen,
    MaxLen,
    Record,
    decode_value,
    encode_value,
)

LENGTH_PREFIX_BYTES = 4
FRAME_ENVELOPE_BYTES = 64
"""Room for the kind, request ids and msgpack headers around the largest payload."""

DEFAULT_MAX_FRAME_BYTES = MAX_WIRE_BYTES + FRAME_ENVELOPE_BYTES
"""Largest frame body after the handshake: one maximal consensus message fits."""

MAX_HANDSHAKE_FRAME_BYTES = 512
"""Largest frame body before authentication: an unknown peer cannot make us buffer more."""

MAX_TXS_PER_FRAME = 1 << 14
"""Most txs in one ``TxsFrame``. Honest gossip sends at most 1 MiB of txs per frame
(``node.peer_bridge.GOSSIP_FRAME_BYTES``, plus the tx that crossed it) and a tx encodes
to at least 73 bytes, so at most 14,365; without a bound one 16 MiB frame held 8 M
empty entries, each handed to admission."""

NONCE_BYTES = 32
BOOT_ID_BYTES = 16
MAX_REASON_CHARS = 64

BootId = Annotated[bytes, FixedLen(BOOT_ID_BYTES)]
Reason = Annotated[str, MaxLen(MAX_REASON_CHARS)]


class FrameKind(IntEnum):
    """The first element of every frame body. Values are wire format: never renumber."""

    HELLO = 1
    AUTH = 2
    REFUSED = 3
    CONSENSUS = 10
    TX = 11
    BATCH_REQUEST = 12
    BATCH_REPLY = 13
    BLOCKS_REQUEST = 14
    BLOCKS_REPLY = 15
    TXS = 16


class PeerFault(StrEnum):
    """Why a peer connection was closed; each is counted per peer by the transport."""

    OVERSIZE_FRAME = "OVERSIZE_FRAME"
    MALFORMED_FRAME = "MALFORMED_FRAME"
    UNKNOWN_FRAME_KIND = "UNKNOWN_FRAME_KIND"
    FRAME_BEFORE_HANDSHAKE = "FRAME_BEFORE_HANDSHAKE"
    UNEXPECTED_FRAME = "UNEXPECTED_FRAME"
    VERSION_MISMATCH = "VERSION_MISMATCH"
    LINK_MISMATCH = "LINK_MISMATCH"
    WRONG_CHAIN = "WRONG_CHAIN"
    NOT_MEMBER = "NOT_MEMBER"
    UNEXPECTED_PEER = "UNEXPECTED_PEER"
    SELF_CONNECTION = "SELF_CONNECTION"
    REPLAYED_NONCE = "REPLAYED_NONCE"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNSOLICITED_REPLY = "UNSOLICITED_REPLY"
    MISMATCHED_REPLY = "MISMATCHED_REPLY"
    REPLY_OVER_BOUND = "REPLY_OVER_BOUND"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"
    # Raised by the transport shell, which owns sockets and the clock:
    HANDSHAKE_TIMEOUT = "HANDSHAKE_TIMEOUT"
    TLS_FAILED = "TLS_FAILED"
    TOO_MANY_HANDSHAKES = "TOO_MANY_HANDSHAKES"
    CONNECTION_LOST = "CONNECTION_LOST"
    REFUSED_BY_PEER = "REFUSED_BY_PEER"
    QUARANTINED = "QUARANTINED"


class FrameError(Exception):
    """A received frame body is not a valid frame; ``fault`` says how."""

    def __init__(self, fault: PeerFault, detail: str) -> None:
        super().__init__(f"{fault}: {detail}")
        self.fault = fault
        self.detail = detail


# --- handshake frames ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello(Record):
    """First frame both ways: who I am, for which chain, and my fresh nonce."""

    version: U32
    chain_id: Bytes32
    public_key: Bytes32
    nonce: Bytes32
    boot_id: BootId
    tls: bool


@dataclass(frozen=True, slots=True)
class Auth(Record):
    """Second frame both ways: my signature over the handshake transcript."""

    signature: Bytes64


@dataclass(frozen=True, slots=True)
class Refused(Record):
    """Last frame before a close: the fault code, so the other operator sees why."""

    reason: Reason


# --- application frames ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsensusFrame(Record):
    """One consensus message, encoded with ``consensus/wire.py``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class TxFrame(Record):
    """One gossiped transaction, in its canonical ledger encoding."""

    tx: bytes


@dataclass(frozen=True, slots=True)
class TxsFrame(Record):
    """Gossiped transactions, in the order this node admitted them: a frame per tx
    cost every peer a frame's framing, TLS record and decode for each one."""

    txs: Annotated[tuple[bytes, ...], MaxLen(MAX_TXS_PER_FRAME)]


@dataclass(frozen=True, slots=True)
class BatchRequest(Record):
    """Ask for the batch whose digest a PRE-PREPARE or NEW-VIEW named."""

    request_id: U64
    digest: Bytes32


@dataclass(frozen=True, slots=True)
class BatchReply(Record):
    """The encoded batch, or ``None`` when the peer does not have it."""

    request_id: U64
    digest: Bytes32
    batch: bytes | None


@dataclass(frozen=True, slots=True)
class BlocksRequest(Record):
    """Ask for blocks ``first_height..last_height`` (inclusive), at most ``max_bytes`` in all."""

    request_id: U64
    first_height: U64
    last_height: U64
    max_bytes: U64


@dataclass(frozen=True, slots=True)
class BlocksReply(Record):
    """A prefix of the asked range, each entry one encoded block with its certificate."""

    request_id: U64
    first_height: U64
    blocks: tuple[bytes, ...]


HandshakeFrame = Hello | Auth | Refused
Frame = (
    ConsensusFrame | TxFrame | TxsFrame | BatchRequest | BatchReply | BlocksRequest | BlocksReply
)
"""The frames the runtime sends and receives once a peer is authenticated."""

AnyFrame = HandshakeFrame | Frame

FRAME_TYPES: dict[FrameKind, type[AnyFrame]] = {
    FrameKind.HELLO: Hello,
    FrameKind.AUTH: Auth,
    FrameKind.REFUSED: Refused,
    FrameKind.CONSENSUS: ConsensusFrame,
    FrameKind.TX: TxFrame,
    FrameKind.TXS: TxsFrame,
    FrameKind.BATCH_REQUEST: BatchRequest,
    FrameKind.BATCH_REPLY: BatchReply,
    FrameKind.BLOCKS_REQUEST: BlocksRequest,
    FrameKind.BLOCKS_REPLY: BlocksReply,
}
KIND_OF: dict[type[AnyFrame], FrameKind] = {t: k for k, t in FRAME_TYPES.items()}


def encode_frame(frame: AnyFrame) -> bytes:
    """Length prefix and body of ``frame``."""
    body = encode_value((int(KIND_OF[type(frame)]), frame.to_value()))
    return len(body).to_bytes(LENGTH_PREFIX_BYTES, "big") + body


def decode_frame_body(body: bytes, *, max_bytes: int) -> AnyFrame:
    """The frame in ``body`` (without its length prefix); raises ``FrameError``."""
    try:
        # No frame holds a longer array than a TxsFrame's txs.
        value = decode_value(body, max_bytes=max_bytes, max_array_len=MAX_TXS_PER_FRAME)
    except DecodeError as exc:
        fault = PeerFault.OVERSIZE_FRAME if exc.reason == "TOO_LARGE" else PeerFault.MALFORMED_FRAME
        raise FrameError(fault, str(exc)) from None
    if not (isinstance(value, tuple) and len(value) == 2):
        raise FrameError(PeerFault.MALFORMED_FRAME, "a frame is the array (kind, fields)")
    kind, fields = value
    if type(kind) is not int:
        raise FrameError(PeerFault.MALFORMED_FRAME, "a frame kind is an integer")
    try:
        frame_type = FRAME_TYPES[FrameKind(kind)]
    except ValueError:
        raise FrameError(PeerFault.UNKNOWN_FRAME_KIND, f"kind {kind}") from None
    try:
        return frame_type.from_value(fields)
    except DecodeError as exc:
        raise FrameError(PeerFault.MALFORMED_FRAME, str(exc)) from None
