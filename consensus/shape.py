"""Structural checks on peer messages: the right types, integers in range, and
the fixed lengths of digests, roots, signatures and request ids.

``wire.py`` enforces the same when decoding bytes (signatures only up to
``MAX_SIGNATURE_BYTES``, since it knows no config), but ``Replica.step`` is
the boundary where a peer fault must stop, whatever built the message object:
an ill-typed field would otherwise raise deep inside a handler, and an
oversized one would be stored (a signed COMMIT with a 1 MiB digest is still
signed). Signatures and protocol rules are checked later, by the handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consensus.messages import (
    DIGEST_BYTES,
    MAX_REQUEST_ID_BYTES,
    STATE_ROOT_BYTES,
    Checkpoint,
    Commit,
    ForwardedRequests,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ProposalMetadata,
    Request,
    ViewChange,
)

__all__ = ["DIGEST_BYTES", "STATE_ROOT_BYTES", "request_well_formed", "shape_problem"]

U64_MAX = (1 << 64) - 1


def _u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= U64_MAX


def _bytes(value: object, length: int) -> bool:
    return type(value) is bytes and len(value) == length


def request_well_formed(request: object) -> bool:
    return (
        isinstance(request, Request)
        and type(request.request_id) is bytes
        and 0 < len(request.request_id) <= MAX_REQUEST_ID_BYTES
        and type(request.payload) is bytes
    )


def _requests_problem(requests: object) -> str | None:
    if type(requests) is not tuple or not all(request_well_formed(r) for r in requests):
        return "not a tuple of requests with 1-64 byte ids"
    return None


@dataclass(frozen=True, slots=True)
class _Shape:
    """The checks, for one signature length (the config's)."""

    signature_bytes: int

    def signature_problem(self, signature: object) -> str | None:
        if not _bytes(signature, self.signature_bytes):
            return f"a signature is not {self.signature_bytes} bytes"
        return None

    def vote(self, message: PrePrepare | Prepare | Commit) -> str | None:
        if not (_u64(message.view) and _u64(message.seq) and _u64(message.sender)):
            return "view, seq or sender is not an unsigned 64-bit integer"
        if not _bytes(message.digest, DIGEST_BYTES):
            return f"digest is not {DIGEST_BYTES} bytes"
        return self.signature_problem(message.signature)

    def pre_prepare(self, message: object) -> str | None:
        if not isinstance(message, PrePrepare):
            return "expected a pre-prepare"
        problem = self.vote(message)
        if problem is not None:
            return problem
        problem = _requests_problem(message.batch)
        if problem is not None:
            return f"batch is {problem}"
        metadata = message.metadata
        if not (
            isinstance(metadata, ProposalMetadata)
            and _u64(metadata.timestamp_ms)
            and _u64(metadata.proposed_view)
        ):
            return "metadata is not a timestamp and view of unsigned 64-bit integers"
        return None

    def prepare(self, message: object) -> str | None:
        if not isinstance(message, Prepare):
            return "expected a prepare"
        return self.vote(message)

    def checkpoint(self, message: object) -> str | None:
        if not isinstance(message, Checkpoint):
            return "expected a checkpoint"
        if not (_u64(message.seq) and _u64(message.sender)):
            return "seq or sender is not an unsigned 64-bit integer"
        if not _bytes(message.state_root, STATE_ROOT_BYTES):
            return f"state root is not {STATE_ROOT_BYTES} bytes"
        return self.signature_problem(message.signature)

    def certificate(self, cert: object) -> str | None:
        if not isinstance(cert, PreparedCertificate):
            return "expected a prepared certificate"
        return self.pre_prepare(cert.pre_prepare) or _all(cert.prepares, self.prepare)

    def view_change(self, message: object) -> str | None:
        if not isinstance(message, ViewChange):
            return "expected a view-change"
        if not (_u64(message.new_view) and _u64(message.stable_seq) and _u64(message.sender)):
            return "view, seq or sender is not an unsigned 64-bit integer"
        if not _bytes(message.stable_root, STATE_ROOT_BYTES):
            return f"state root is not {STATE_ROOT_BYTES} bytes"
        return (
            self.signature_problem(message.signature)
            or _all(message.checkpoint_proof, self.checkpoint)
            or _all(message.prepared, self.certificate)
        )

    def new_view(self, message: NewView) -> str | None:
        if not (_u64(message.view) and _u64(message.sender)):
            return "view or sender is not an unsigned 64-bit integer"
        return (
            self.signature_problem(message.signature)
            or _all(message.view_changes, self.view_change)
            or _all(message.pre_prepares, self.pre_prepare)
        )

    def forwarded_requests(self, message: ForwardedRequests) -> str | None:
        if not (_u64(message.view) and _u64(message.sender)):
            return "view or sender is not an unsigned 64-bit integer"
        problem = _requests_problem(message.requests)
        if problem is not None:
            return f"requests are {problem}"
        return self.signature_problem(message.signature)


def _all(items: object, check: Callable[[object], str | None]) -> str | None:
    if type(items) is not tuple:
        return "expected a tuple"
    for item in items:
        problem = check(item)
        if problem is not None:
            return problem
    return None


def shape_problem(message: object, *, signature_bytes: int) -> str | None:
    """Why ``message`` is not a well-formed protocol message, or None.

    ``signature_bytes`` is the length of the validators' signatures
    (``ReplicaConfig.signature_bytes``)."""
    shape = _Shape(signature_bytes)
    match message:
        case PrePrepare():
            return shape.pre_prepare(message)
        case Prepare() | Commit():
            return shape.vote(message)
        case Checkpoint():
            return shape.checkpoint(message)
        case ViewChange():
            return shape.view_change(message)
        case NewView():
            return shape.new_view(message)
        case ForwardedRequests():
            return shape.forwarded_requests(message)
    return f"not a message: {type(message).__name__}"
