"""Structural checks on peer messages: the right types, integers in range.

``wire.py`` enforces the same when decoding bytes, but ``Replica.step`` is the
boundary where a peer fault must stop, whatever built the message object: an
ill-typed field would otherwise raise deep inside a handler. Signatures and
protocol rules are checked later, by the handlers.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.messages import (
    BatchReply,
    Checkpoint,
    Commit,
    FetchBatch,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ProposalMetadata,
    Request,
    ViewChange,
)

U64_MAX = (1 << 64) - 1


def _u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= U64_MAX


def _bytes(value: object) -> bool:
    return type(value) is bytes


def request_well_formed(request: object) -> bool:
    return (
        isinstance(request, Request)
        and type(request.request_id) is bytes
        and type(request.payload) is bytes
    )


def _vote_problem(message: PrePrepare | Prepare | Commit) -> str | None:
    if not (_u64(message.view) and _u64(message.seq) and _u64(message.sender)):
        return "view, seq or sender is not an unsigned 64-bit integer"
    if not (_bytes(message.digest) and _bytes(message.signature)):
        return "digest or signature is not bytes"
    return None


def _pre_prepare_problem(message: object) -> str | None:
    if not isinstance(message, PrePrepare):
        return "expected a pre-prepare"
    problem = _vote_problem(message)
    if problem is not None:
        return problem
    batch = message.batch
    if type(batch) is not tuple or not all(request_well_formed(r) for r in batch):
        return "batch is not a tuple of requests"
    return _metadata_problem(message.metadata)


def _metadata_problem(metadata: object) -> str | None:
    if not (
        isinstance(metadata, ProposalMetadata)
        and _u64(metadata.timestamp_ms)
        and _u64(metadata.proposed_view)
    ):
        return "metadata is not a timestamp and view of unsigned 64-bit integers"
    return None


def _prepare_problem(message: object) -> str | None:
    if not isinstance(message, Prepare):
        return "expected a prepare"
    return _vote_problem(message)


def _checkpoint_problem(message: object) -> str | None:
    if not isinstance(message, Checkpoint):
        return "expected a checkpoint"
    if not (_u64(message.seq) and _u64(message.sender)):
        return "seq or sender is not an unsigned 64-bit integer"
    if not (_bytes(message.state_root) and _bytes(message.signature)):
        return "state root or signature is not bytes"
    return None


def _all(items: object, check: Callable[[object], str | None]) -> str | None:
    if type(items) is not tuple:
        return "expected a tuple"
    for item in items:
        problem = check(item)
        if problem is not None:
            return problem
    return None


def _certificate_problem(cert: object) -> str | None:
    if not isinstance(cert, PreparedCertificate):
        return "expected a prepared certificate"
    return _pre_prepare_problem(cert.pre_prepare) or _all(cert.prepares, _prepare_problem)


def _view_change_problem(message: object) -> str | None:
    if not isinstance(message, ViewChange):
        return "expected a view-change"
    if not (_u64(message.new_view) and _u64(message.stable_seq) and _u64(message.sender)):
        return "view, seq or sender is not an unsigned 64-bit integer"
    if not (_bytes(message.stable_root) and _bytes(message.signature)):
        return "state root or signature is not bytes"
    return _all(message.checkpoint_proof, _checkpoint_problem) or _all(
        message.prepared, _certificate_problem
    )


def _new_view_problem(message: NewView) -> str | None:
    if not (_u64(message.view) and _u64(message.sender)):
        return "view or sender is not an unsigned 64-bit integer"
    if not _bytes(message.signature):
        return "signature is not bytes"
    return _all(message.view_changes, _view_change_problem) or _all(
        message.pre_prepares, _pre_prepare_problem
    )


def _fetch_problem(message: FetchBatch | BatchReply) -> str | None:
    if not (_u64(message.seq) and _u64(message.sender)):
        return "seq or sender is not an unsigned 64-bit integer"
    if not (_bytes(message.digest) and _bytes(message.signature)):
        return "digest or signature is not bytes"
    if isinstance(message, BatchReply):
        batch = message.batch
        if type(batch) is not tuple or not all(request_well_formed(r) for r in batch):
            return "batch is not a tuple of requests"
        return _metadata_problem(message.metadata)
    return None


def shape_problem(message: object) -> str | None:
    """Why ``message`` is not a well-typed protocol message, or None."""
    match message:
        case PrePrepare():
            return _pre_prepare_problem(message)
        case Prepare() | Commit():
            return _vote_problem(message)
        case Checkpoint():
            return _checkpoint_problem(message)
        case ViewChange():
            return _view_change_problem(message)
        case NewView():
            return _new_view_problem(message)
        case FetchBatch() | BatchReply():
            return _fetch_problem(message)
    return f"not a message: {type(message).__name__}"
