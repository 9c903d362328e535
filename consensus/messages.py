"""Protocol messages and the canonical bytes each sender signs.

Signed bytes are msgpack of a tuple that starts with a versioned domain tag and
the chain id, so a signature for one message kind, or for another chain, can
never be replayed as a different message. A PRE-PREPARE signs the proposal
digest, not the batch: receivers check
``digest == proposal_digest(batch, metadata)`` instead, which keeps
certificates small. The digest covers the proposal metadata (the primary's
timestamp and the view the batch was first proposed in) as well as the batch,
so a commit certificate fixes both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgpack

TAG_PROPOSAL = b"veil/consensus/proposal/v1"
TAG_PRE_PREPARE = b"veil/consensus/pre-prepare/v1"
TAG_PREPARE = b"veil/consensus/prepare/v1"
TAG_COMMIT = b"veil/consensus/commit/v1"
TAG_CHECKPOINT = b"veil/consensus/checkpoint/v1"
TAG_VIEW_CHANGE = b"veil/consensus/view-change/v1"
TAG_NEW_VIEW = b"veil/consensus/new-view/v1"
TAG_FORWARDED_REQUESTS = b"veil/consensus/forwarded-requests/v1"

DIGEST_BYTES = 32
"""A proposal digest (SHA-256)."""
STATE_ROOT_BYTES = 32
"""An application state root."""
MAX_REQUEST_ID_BYTES = 64
"""A request id: the node's is a 32-byte tx hash."""


@dataclass(frozen=True, slots=True)
class Request:
    """An opaque client request; ``request_id`` is chosen by the client and deduplicates."""

    request_id: bytes
    payload: bytes


Batch = tuple[Request, ...]
NULL_BATCH: Batch = ()


def _pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


@dataclass(frozen=True, slots=True)
class ProposalMetadata:
    """What the primary binds to a batch besides its requests.

    ``timestamp_ms`` is the primary's clock when it proposed (time enters the
    core as ``Tick(now_ms)``); ``proposed_view`` is the view in which the batch
    was first proposed, kept when a NEW-VIEW re-issues it.
    """

    timestamp_ms: int
    proposed_view: int


def null_metadata(view: int, previous: ProposalMetadata | None) -> ProposalMetadata:
    """The metadata of a null batch a NEW-VIEW of ``view`` fills a gap with.

    Every backup recomputes it from the NEW-VIEW's contents, so it leaves the
    new primary no choice: the timestamp of the batch planned just before it
    (0 when the gap follows the stable checkpoint), and ``view`` as the view
    that first proposed it.
    """
    return ProposalMetadata(0 if previous is None else previous.timestamp_ms, view)


def proposal_digest(batch: Batch, metadata: ProposalMetadata, chain_id: bytes) -> bytes:
    """SHA-256 of the canonical encoding of a batch and its metadata; the null
    batch has one too."""
    body = [(r.request_id, r.payload) for r in batch]
    fields = (metadata.timestamp_ms, metadata.proposed_view)
    return hashlib.sha256(_pack((TAG_PROPOSAL, chain_id, fields, body))).digest()


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """The primary of ``view`` proposes ``batch`` for height ``seq``."""

    view: int
    seq: int
    digest: bytes
    batch: Batch
    metadata: ProposalMetadata
    sender: int
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Prepare:
    """A backup accepted the pre-prepare for (view, seq, digest)."""

    view: int
    seq: int
    digest: bytes
    sender: int
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Commit:
    """The sender has a prepared certificate for (view, seq, digest)."""

    view: int
    seq: int
    digest: bytes
    sender: int
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The sender's application state root after executing height ``seq``."""

    seq: int
    state_root: bytes
    sender: int
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class PreparedCertificate:
    """A pre-prepare and 2f matching prepares from distinct backups: proof of 'prepared'."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]


@dataclass(frozen=True, slots=True)
class ViewChange:
    """The sender leaves its view for ``new_view``, carrying what it must not lose."""

    new_view: int
    stable_seq: int
    stable_root: bytes
    checkpoint_proof: tuple[Checkpoint, ...]
    prepared: tuple[PreparedCertificate, ...]
    sender: int
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class NewView:
    """The primary of ``view`` starts it: 2f+1 view-changes and the re-issued pre-prepares."""

    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    sender: int
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class ForwardedRequests:
    """A backup relays client requests it has waited on to the primary of ``view``.

    Clients send to every replica, but a primary may claim it never got a
    request; the relay takes that excuse away (PBFT's backups do the same).
    """

    view: int
    requests: tuple[Request, ...]
    sender: int
    signature: bytes = b""


Message = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView | ForwardedRequests
VoteMessage = PrePrepare | Prepare | Commit


def _view_change_body(vc: ViewChange) -> tuple[object, ...]:
    proof = [(c.seq, c.state_root, c.sender, c.signature) for c in vc.checkpoint_proof]
    certs = [
        (
            (c.pre_prepare.view, c.pre_prepare.seq, c.pre_prepare.digest, c.pre_prepare.sender),
            c.pre_prepare.signature,
            [(p.sender, p.signature) for p in c.prepares],
        )
        for c in vc.prepared
    ]
    return (vc.new_view, vc.stable_seq, vc.stable_root, proof, certs, vc.sender)


def signed_bytes(message: Message, chain_id: bytes) -> bytes:
    """The exact bytes the sender's signature covers (never includes the signature)."""
    match message:
        case PrePrepare(view=v, seq=s, digest=d, sender=i):
            return _pack((TAG_PRE_PREPARE, chain_id, v, s, d, i))
        case Prepare(view=v, seq=s, digest=d, sender=i):
            return _pack((TAG_PREPARE, chain_id, v, s, d, i))
        case Commit(view=v, seq=s, digest=d, sender=i):
            return _pack((TAG_COMMIT, chain_id, v, s, d, i))
        case Checkpoint(seq=s, state_root=r, sender=i):
            return _pack((TAG_CHECKPOINT, chain_id, s, r, i))
        case ViewChange():
            return _pack((TAG_VIEW_CHANGE, chain_id, *_view_change_body(message)))
        case NewView(view=v, sender=i):
            # Each view-change is bound by the hash of its own signed bytes plus
            # its signature, so the new-view signature covers their full content.
            vcs = [
                (hashlib.sha256(signed_bytes(vc, chain_id)).digest(), vc.signature)
                for vc in message.view_changes
            ]
            pps = [(p.seq, p.digest, p.signature) for p in message.pre_prepares]
            return _pack((TAG_NEW_VIEW, chain_id, v, vcs, pps, i))
        case ForwardedRequests(view=v, sender=i):
            body = [(r.request_id, r.payload) for r in message.requests]
            return _pack((TAG_FORWARDED_REQUESTS, chain_id, v, body, i))
