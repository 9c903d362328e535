"""The peer protocol between two validators, sans I/O: handshake, then frames.

Shaped like h11's ``Connection``: the shell feeds received bytes to
``receive_data``, takes events from ``next_event`` until it returns ``None``,
and writes whatever ``data_to_send`` and the ``send_*`` methods return. This
module never touches a socket, a clock or a random source: nonces and boot ids
are passed in, so tests drive it step by step like ``Replica``.

Handshake (both sides send the same two frames, in order):

1. ``Hello(version, chain_id, public_key, nonce, boot_id, tls)`` with a fresh
   32-byte nonce. The receiver refuses a wrong version, a plain/TLS mismatch,
   another chain id, its own key, a key outside the genesis validator set, a
   validator other than the one it dialed, and a nonce it has seen before.
2. ``Auth(signature)``: an ed25519 signature (``ledger.identity``, domain tag
   ``HANDSHAKE_TAG``, over the chain id) of the transcript: both public keys,
   both nonces, both boot ids, the link kind, the channel binding and the
   signer's role. Both nonces make it fresh, the role stops reflection, and
   the channel binding (``tls_channel_binding``) ties it to this TLS session,
   so an authenticated handshake cannot be replayed or relayed.

Until both ``Auth`` frames verify, frames are limited to
``MAX_HANDSHAKE_FRAME_BYTES`` and any other kind is a fault, so no consensus
message is read from an unauthenticated peer. A fault is an event, never an
exception: the connection moves to ``CLOSED``, queues a ``Refused`` frame
naming the fault, and ignores further input. The shell counts it and closes.

After the handshake each ``receive_data`` call is one WebSocket message, and
the sender writes each frame as a message of its own: a message that holds
more than one frame is a fault, so one message cannot make us parse millions.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import Enum

from consensus.invariants import invariant
from ledger.codec import encode_value
from ledger.identity import SigningIdentity, verify_signature
from node.peer_frames import (
    BOOT_ID_BYTES,
    DEFAULT_MAX_FRAME_BYTES,
    LENGTH_PREFIX_BYTES,
    MAX_HANDSHAKE_FRAME_BYTES,
    NONCE_BYTES,
    AnyFrame,
    Auth,
    BatchReply,
    BatchRequest,
    BlocksReply,
    BlocksRequest,
    ConsensusFrame,
    Frame,
    FrameError,
    Hello,
    PeerFault,
    Refused,
    TxFrame,
    TxsFrame,
    decode_frame_body,
    encode_frame,
)

PROTOCOL_VERSION = 3
"""2: gossip may come as `TxsFrame`s (several txs per frame); version 1 nodes cannot read them.
3: the ledger's signature rule is cofactored (``ledger.signature_rule``); a version 2
node would refuse a tx a version 3 node executes, so the two must not share a chain's
consensus."""
HANDSHAKE_TAG = b"veil/peer/handshake/v1"
TLS_BINDING_TAG = b"veil/peer/tls-certs/v1"
PLAIN_CHANNEL_BINDING = hashlib.sha256(b"veil/peer/plain/v1").digest()
"""A plain link's binding: a constant, so plain sessions can be relayed (docs/operations.md)."""

MAX_PENDING_REQUESTS = 64
"""Unanswered requests allowed per direction on one connection."""


class Role(Enum):
    DIALER = "dialer"
    LISTENER = "listener"


class ConnectionState(Enum):
    IDLE = "idle"  # nothing sent yet: call start()
    AWAIT_HELLO = "await_hello"  # our Hello sent
    AWAIT_AUTH = "await_auth"  # their Hello checked, our Auth sent
    ESTABLISHED = "established"  # both Auths verified: frames flow
    CLOSED = "closed"  # a fault or a refusal: input is ignored


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The peer proved it holds the key of validator ``peer_index``."""

    peer_index: int
    public_key: bytes
    boot_id: bytes


@dataclass(frozen=True, slots=True)
class ProtocolFault:
    """The peer broke the protocol; the connection is closed."""

    fault: PeerFault
    detail: str


@dataclass(frozen=True, slots=True)
class RemoteRefused:
    """The peer closed the connection, naming our fault (untrusted: for logs only)."""

    reason: str


Event = Authenticated | ProtocolFault | RemoteRefused | Frame


def tls_channel_binding(dialer_certificate_der: bytes, listener_certificate_der: bytes) -> bytes:
    """The binding both ends of one mutual-TLS session compute alike.

    Python's ``ssl`` has no TLS exporter, so we bind the two certificates, in
    role order. A relay between A and B must terminate TLS with its own
    certificate on each side (it lacks A's and B's TLS keys), so A and B
    compute different bindings and neither's signature verifies at the other.
    """
    return hashlib.sha256(
        encode_value(
            (
                TLS_BINDING_TAG,
                hashlib.sha256(dialer_certificate_der).digest(),
                hashlib.sha256(listener_certificate_der).digest(),
            )
        )
    ).digest()


class NonceMemory:
    """The most recent peer nonces, shared by all connections of one node.

    Each handshake already carries our own fresh nonce, so a replayed one
    cannot verify; refusing a repeated peer nonce also catches a peer (or a
    broken RNG) reusing one, and a reflected copy of our own.
    """

    def __init__(self, capacity: int = 4096) -> None:
        invariant(capacity >= 1, "nonce memory needs room for one nonce")
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, nonce: object) -> bool:
        return nonce in self._seen

    def remember(self, nonce: bytes) -> None:
        self._seen[nonce] = None
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


@dataclass(frozen=True, slots=True)
class LocalPeer:
    """What a node knows about itself and its chain for every connection."""

    identity: SigningIdentity
    chain_id: bytes
    validators: tuple[bytes, ...]
    boot_id: bytes

    def __post_init__(self) -> None:
        if self.identity.public_key not in self.validators:
            raise ValueError("our key is not in the genesis validator set")
        if len(self.boot_id) != BOOT_ID_BYTES:
            raise ValueError(f"a boot id is {BOOT_ID_BYTES} bytes")

    @property
    def index(self) -> int:
        return self.validators.index(self.identity.public_key)


class Connection:
    """One peer connection's protocol state. Create one per socket."""

    def __init__(
        self,
        local: LocalPeer,
        *,
        role: Role,
        nonce: bytes,
        channel_binding: bytes,
        tls: bool,
        expected_peer: int | None = None,
        nonce_memory: NonceMemory | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"a handshake nonce is {NONCE_BYTES} bytes")
        if len(channel_binding) != 32:
            raise ValueError("a channel binding is 32 bytes")
        if max_frame_bytes < MAX_HANDSHAKE_FRAME_BYTES:
            raise ValueError("max_frame_bytes must hold a handshake frame")
        self.local = local
        self.role = role
        self.tls = tls
        self.expected_peer = expected_peer
        self.max_frame_bytes = max_frame_bytes
        self.state = ConnectionState.IDLE
        self.peer_index: int | None = None
        self.peer_boot_id: bytes | None = None
        self._nonce = nonce
        self._binding = channel_binding
        self._nonces = nonce_memory if nonce_memory is not None else NonceMemory()
        self._peer_hello: Hello | None = None
        self._buffer = bytearray()
        self._events: deque[Event] = deque()
        self._outbox = bytearray()
        self._next_request_id = 0
        self._our_batch_requests: dict[int, bytes] = {}
        self._our_blocks_requests: dict[int, BlocksRequest] = {}
        self._their_requests: dict[int, BatchRequest | BlocksRequest] = {}

    # --- the shell's side -------------------------------------------------------

    def start(self) -> bytes:
        """Our ``Hello``; both roles send it as soon as the socket is open."""
        invariant(self.state is ConnectionState.IDLE, "start() called twice")
        self.state = ConnectionState.AWAIT_HELLO
        return encode_frame(
            Hello(
                PROTOCOL_VERSION,
                self.local.chain_id,
                self.local.identity.public_key,
                self._nonce,
                self.local.boot_id,
                self.tls,
            )
        )

    def receive_data(self, data: bytes) -> None:
        """Buffer one received message and parse its frames: at most one once established."""
        if self.closed:
            return
        invariant(self.state is not ConnectionState.IDLE, "receive_data() before start()")
        self._buffer += data
        while not self.closed:
            if len(self._buffer) < LENGTH_PREFIX_BYTES:
                return
            length = int.from_bytes(self._buffer[:LENGTH_PREFIX_BYTES], "big")
            limit = (
                self.max_frame_bytes
                if self.state is ConnectionState.ESTABLISHED
                else MAX_HANDSHAKE_FRAME_BYTES
            )
            if length > limit:
                self._fault(PeerFault.OVERSIZE_FRAME, f"{length} bytes, limit {limit}")
                return
            end = LENGTH_PREFIX_BYTES + length
            if len(self._buffer) < end:
                return
            if self.state is ConnectionState.ESTABLISHED and len(self._buffer) > end:
                # Honest peers send one frame per message: more is a flood.
                self._fault(PeerFault.UNEXPECTED_FRAME, "more than one frame in one message")
                return
            body = bytes(self._buffer[LENGTH_PREFIX_BYTES:end])
            del self._buffer[:end]
            try:
                frame = decode_frame_body(body, max_bytes=limit)
            except FrameError as exc:
                self._fault(exc.fault, exc.detail)
                return
            self._handle(frame)

    def next_event(self) -> Event | None:
        """The oldest unread event, or ``None`` when more data is needed."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Bytes the protocol produced by itself (``Auth``, ``Refused``); empties the outbox."""
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    @property
    def closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet parsed (at most one partial frame)."""
        return len(self._buffer)

    # --- sending frames -----------------------------------------------------------

    def send(self, frame: Frame) -> bytes:
        """The bytes of ``frame``; ``b""`` for a reply this connection no longer owes.

        A reply can outlive its connection when the link is replaced; the
        requester's new connection would refuse it, so it is dropped here. Ids
        restart on every connection, so a stale reply may carry an id owed here
        for another question: that one stays owed. Requests get their id from
        ``request_batch`` / ``request_blocks``, not from here.
        """
        invariant(self.state is ConnectionState.ESTABLISHED, "send() before the handshake")
        if isinstance(frame, (BatchRequest, BlocksRequest)):
            invariant(False, "requests go through request_batch / request_blocks")
        if isinstance(frame, (BatchReply, BlocksReply)):
            request = self._their_requests.get(frame.request_id)
            if request is None or not _answers(frame, request):
                return b""
            del self._their_requests[frame.request_id]
            if isinstance(frame, BlocksReply) and isinstance(request, BlocksRequest):
                frame = _fit_blocks(frame, request, self.max_frame_bytes // 2)
        data = encode_frame(frame)
        invariant(
            len(data) - LENGTH_PREFIX_BYTES <= self.max_frame_bytes,
            f"outgoing {type(frame).__name__} exceeds the frame limit",
        )
        return data

    def request_batch(self, digest: bytes) -> tuple[int, bytes]:
        """A ``BatchRequest`` for ``digest``: its request id and its bytes."""
        request_id = self._new_request_id()
        self._our_batch_requests[request_id] = digest
        return request_id, encode_frame(BatchRequest(request_id, digest))

    def request_blocks(
        self, first_height: int, last_height: int, max_bytes: int
    ) -> tuple[int, bytes]:
        """A ``BlocksRequest``; ``max_bytes`` is capped so the reply fits one frame."""
        invariant(1 <= first_height <= last_height, "empty or inverted block range")
        max_bytes = min(max_bytes, self.max_frame_bytes // 2)
        request_id = self._new_request_id()
        request = BlocksRequest(request_id, first_height, last_height, max_bytes)
        self._our_blocks_requests[request_id] = request
        return request_id, encode_frame(request)

    def _new_request_id(self) -> int:
        invariant(self.state is ConnectionState.ESTABLISHED, "request before the handshake")
        invariant(
            len(self._our_batch_requests) + len(self._our_blocks_requests) < MAX_PENDING_REQUESTS,
            "too many requests pending on one connection",
        )
        self._next_request_id += 1
        return self._next_request_id

    @property
    def pending_requests(self) -> int:
        """Our requests on this connection that have no reply yet."""
        return len(self._our_batch_requests) + len(self._our_blocks_requests)

    # --- receiving frames ---------------------------------------------------------

    def _handle(self, frame: AnyFrame) -> None:
        if isinstance(frame, Refused):
            self.state = ConnectionState.CLOSED
            self._events.append(RemoteRefused(frame.reason))
        elif isinstance(frame, Hello):
            if self.state is not ConnectionState.AWAIT_HELLO:
                self._fault(PeerFault.UNEXPECTED_FRAME, "a second Hello")
            else:
                self._on_hello(frame)
        elif isinstance(frame, Auth):
            if self.state is not ConnectionState.AWAIT_AUTH:
                self._fault(PeerFault.UNEXPECTED_FRAME, f"Auth in state {self.state.value}")
            else:
                self._on_auth(frame)
        elif self.state is not ConnectionState.ESTABLISHED:
            self._fault(PeerFault.FRAME_BEFORE_HANDSHAKE, type(frame).__name__)
        else:
            self._on_application_frame(frame)

    def _on_hello(self, hello: Hello) -> None:
        local = self.local
        problem = self._hello_problem(hello)
        if problem is not None:
            self._fault(*problem)
            return
        self._nonces.remember(hello.nonce)
        self._peer_hello = hello
        self.peer_index = local.validators.index(hello.public_key)
        self.peer_boot_id = hello.boot_id
        signature = local.identity.sign(
            HANDSHAKE_TAG, local.chain_id, self._transcript(hello, signer=self.role)
        )
        self._outbox += encode_frame(Auth(signature))
        self.state = ConnectionState.AWAIT_AUTH

    def _hello_problem(self, hello: Hello) -> tuple[PeerFault, str] | None:
        local = self.local
        if hello.version != PROTOCOL_VERSION:
            return PeerFault.VERSION_MISMATCH, f"version {hello.version}"
        if hello.tls != self.tls:
            return PeerFault.LINK_MISMATCH, "peer tls" if hello.tls else "peer plain"
        if hello.chain_id != local.chain_id:
            return PeerFault.WRONG_CHAIN, hello.chain_id.hex()[:16]
        if hello.public_key == local.identity.public_key:
            return PeerFault.SELF_CONNECTION, "our own key"
        if hello.public_key not in local.validators:
            return PeerFault.NOT_MEMBER, hello.public_key.hex()[:16]
        index = local.validators.index(hello.public_key)
        if self.expected_peer is not None and index != self.expected_peer:
            return PeerFault.UNEXPECTED_PEER, f"dialed {self.expected_peer}, got {index}"
        if hello.nonce == self._nonce or hello.nonce in self._nonces:
            return PeerFault.REPLAYED_NONCE, hello.nonce.hex()[:16]
        return None

    def _on_auth(self, auth: Auth) -> None:
        hello = self._peer_hello
        invariant(hello is not None and self.peer_index is not None, "Auth before Hello")
        if hello is None or self.peer_index is None:  # narrowing for mypy
            return
        peer_role = Role.LISTENER if self.role is Role.DIALER else Role.DIALER
        transcript = self._transcript(hello, signer=peer_role)
        if not verify_signature(
            hello.public_key, HANDSHAKE_TAG, self.local.chain_id, transcript, auth.signature
        ):
            self._fault(PeerFault.BAD_SIGNATURE, "handshake signature does not verify")
            return
        self.state = ConnectionState.ESTABLISHED
        self._events.append(Authenticated(self.peer_index, hello.public_key, hello.boot_id))

    def _transcript(self, peer: Hello, *, signer: Role) -> bytes:
        ours = (self.local.identity.public_key, self._nonce, self.local.boot_id)
        theirs = (peer.public_key, peer.nonce, peer.boot_id)
        dialer, listener = (ours, theirs) if self.role is Role.DIALER else (theirs, ours)
        return encode_value(
            (
                PROTOCOL_VERSION,
                *dialer,
                *listener,
                self.tls,
                self._binding,
                signer.value.encode(),
            )
        )

    def _on_application_frame(self, frame: AnyFrame) -> None:
        if isinstance(frame, (BatchRequest, BlocksRequest)):
            if len(self._their_requests) >= MAX_PENDING_REQUESTS:
                self._fault(PeerFault.TOO_MANY_REQUESTS, f"over {MAX_PENDING_REQUESTS} unanswered")
                return
            if isinstance(frame, BlocksRequest) and frame.first_height > frame.last_height:
                self._fault(PeerFault.MALFORMED_FRAME, "inverted block range")
                return
            if frame.request_id in self._their_requests:
                # Kept, it would replace the first, whose answer send() would then
                # drop as no longer owed.
                self._fault(PeerFault.DUPLICATE_REQUEST, f"request id {frame.request_id} pending")
                return
            self._their_requests[frame.request_id] = frame
        elif isinstance(frame, BatchReply):
            digest = self._our_batch_requests.pop(frame.request_id, None)
            if digest is None:
                self._fault(PeerFault.UNSOLICITED_REPLY, f"batch reply {frame.request_id}")
                return
            if frame.digest != digest:
                self._fault(PeerFault.MISMATCHED_REPLY, "batch reply for another digest")
                return
        elif isinstance(frame, BlocksReply):
            request = self._our_blocks_requests.pop(frame.request_id, None)
            if request is None:
                self._fault(PeerFault.UNSOLICITED_REPLY, f"blocks reply {frame.request_id}")
                return
            problem = _blocks_reply_problem(request, frame)
            if problem is not None:
                self._fault(*problem)
                return
        elif not isinstance(frame, (ConsensusFrame, TxFrame, TxsFrame)):
            self._fault(PeerFault.UNEXPECTED_FRAME, type(frame).__name__)
            return
        self._events.append(frame)

    def _fault(self, fault: PeerFault, detail: str) -> None:
        self.state = ConnectionState.CLOSED
        self._buffer.clear()
        self._events.append(ProtocolFault(fault, detail))
        self._outbox += encode_frame(Refused(fault.value))


def _answers(reply: BatchReply | BlocksReply, request: BatchRequest | BlocksRequest) -> bool:
    """Whether ``reply`` answers ``request``: same kind, and the same digest or first height."""
    if isinstance(reply, BatchReply):
        return isinstance(request, BatchRequest) and reply.digest == request.digest
    return isinstance(request, BlocksRequest) and reply.first_height == request.first_height


def _blocks_reply_problem(
    request: BlocksRequest, reply: BlocksReply
) -> tuple[PeerFault, str] | None:
    if reply.first_height != request.first_height:
        detail = f"starts at {reply.first_height}, asked {request.first_height}"
        return PeerFault.MISMATCHED_REPLY, detail
    asked = request.last_height - request.first_height + 1
    if len(reply.blocks) > asked:
        return PeerFault.REPLY_OVER_BOUND, f"{len(reply.blocks)} blocks, asked {asked}"
    total = sum(len(block) for block in reply.blocks)
    if total > request.max_bytes:
        return PeerFault.REPLY_OVER_BOUND, f"{total} bytes, asked at most {request.max_bytes}"
    return None


def _fit_blocks(reply: BlocksReply, request: BlocksRequest, frame_bound: int) -> BlocksReply:
    """The longest prefix of ``reply.blocks`` within the asked count and bytes."""
    max_bytes = min(request.max_bytes, frame_bound)
    total = 0
    kept: list[bytes] = []
    for block in reply.blocks[: request.last_height - request.first_height + 1]:
        total += len(block)
        if total > max_bytes:
            break
        kept.append(block)
    return BlocksReply(reply.request_id, reply.first_height, tuple(kept))
