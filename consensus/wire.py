"""Wire and disk encoding of messages, persistence records and commit
certificates, decoded strictly.

The node sends messages between validators and writes records to its
write-ahead log; both need bytes. The encoding is msgpack of nested arrays in
dataclass field order, tagged with the type name. Decoding follows the message
schema (field type hints, compiled once per type; the schema is not recursive,
so it bounds the nesting), checks every field's type, rejects negative or
over-64-bit integers, oversize input, wrong field counts and, given
``WireLimits``, arrays longer than the config allows, and accepts bytes
only if re-encoding the result gives the same bytes (so nothing has two
encodings). Signatures are not checked here: the replica
does that.
"""

from __future__ import annotations

import dataclasses
import operator
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

import msgpack

from consensus.certificate import CommitCertificate
from consensus.messages import (
    DIGEST_BYTES,
    MAX_REQUEST_ID_BYTES,
    STATE_ROOT_BYTES,
    BatchReply,
    Checkpoint,
    Commit,
    FetchBatch,
    ForwardedRequests,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    PrePrepareHeader,
    ProposalMetadata,
    Request,
    Status,
    ViewChange,
)
from consensus.persistence import (
    BatchRecord,
    NewViewRecord,
    PreparedRecord,
    Record,
    StableCheckpointRecord,
    ViewRecord,
    VoteRecord,
)

MAX_WIRE_BYTES = 16 << 20
"""Largest encoding accepted: a NEW-VIEW carries 2f+1 view-changes with their batches."""

MAX_SIGNATURE_BYTES = 64
"""Longest signature carried (ed25519); the replica checks the exact length."""

_EXACT_BYTES = {
    "digest": DIGEST_BYTES,
    "state_root": STATE_ROOT_BYTES,
    "stable_root": STATE_ROOT_BYTES,
}
_BYTES_RANGE = {"signature": (0, MAX_SIGNATURE_BYTES), "request_id": (1, MAX_REQUEST_ID_BYTES)}

U64_MAX = (1 << 64) - 1

MESSAGE_TYPES: dict[str, type[Any]] = {
    t.__name__: t
    for t in (
        PrePrepare,
        Prepare,
        Commit,
        Checkpoint,
        ViewChange,
        NewView,
        ForwardedRequests,
        FetchBatch,
        BatchReply,
        Status,
    )
}
RECORD_TYPES: dict[str, type[Any]] = {
    t.__name__: t
    for t in (
        ViewRecord,
        VoteRecord,
        PreparedRecord,
        StableCheckpointRecord,
        NewViewRecord,
        BatchRecord,
    )
}
_NESTED = (Request, PreparedCertificate, ProposalMetadata, PrePrepareHeader)
_MOST_FIELDS = max(
    len(dataclasses.fields(t)) for t in (*MESSAGE_TYPES.values(), *RECORD_TYPES.values(), *_NESTED)
)


class WireError(ValueError):
    """The bytes are not the canonical encoding of a message or record."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WireLimits:
    """The replica's config, as far as it bounds how many items an honest message's
    arrays hold (``consensus.bounds`` argues each count). Bytes alone let a 16 MiB
    relay carry 2.7 M requests, seconds of decoding before the replica refuses it."""

    max_batch_size: int
    replica_count: int
    watermark_window: int

    def __post_init__(self) -> None:
        for value in (self.max_batch_size, self.replica_count, self.watermark_window):
            if type(value) is not int or value < 1:
                raise ValueError("wire limits must be positive ints")

    def most_items(self, item: object) -> int:
        """The longest array of ``item`` an honest message or record holds."""
        if item is Request:
            return self.max_batch_size  # a batch, or a relay (no longer than one)
        if item is Checkpoint or item is ViewChange:
            return self.replica_count  # distinct signers / senders
        if item is Prepare:
            return self.replica_count - 1  # distinct, never the primary
        if item is PreparedCertificate or item is PrePrepareHeader:
            return self.watermark_window  # one per seq of a window
        raise TypeError(f"no count bound for arrays of {item!r}")

    @property
    def longest_array(self) -> int:
        """msgpack refuses any longer array at its header, before building its items."""
        return max(self.max_batch_size, self.replica_count, self.watermark_window, _MOST_FIELDS)


Encoder = Callable[[Any], object]
Decoder = Callable[[object], Any]
_SCALARS: frozenset[type[Any]] = frozenset({int, bool, bytes, str, float, type(None)})
_ENCODERS: dict[type[Any], Encoder] = {}


def _to_plain(value: object) -> object:
    """Dataclasses to ``[name, fields]`` (bare ``fields`` for the nested types),
    tuples to lists, anything else as it is; by the value's runtime type, with
    one encoder per type built once (``dataclasses.fields`` and ``is_dataclass``
    per value were a third of a node's CPU under load, docs/performance.md)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        encoder = _ENCODERS[kind] = _build_encoder(kind)
    return encoder(value)


def _build_encoder(kind: type[Any]) -> Encoder:
    if dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in dataclasses.fields(kind))
        scalar_fields = _scalar_fields_getter(kind, names)
        if kind in _NESTED:
            if scalar_fields is not None:
                return scalar_fields
            return lambda value: [_to_plain(getattr(value, name)) for name in names]
        tag = kind.__name__
        if scalar_fields is not None:
            return lambda value: (tag, scalar_fields(value))
        return lambda value: [tag, [_to_plain(getattr(value, name)) for name in names]]
    if issubclass(kind, tuple):
        return lambda value: [_to_plain(item) for item in value]
    return lambda value: value


_SCALAR_HINTS = (int, bool, bytes, str)


def _scalar_fields_getter(kind: type[Any], names: tuple[str, ...]) -> Encoder | None:
    """For a dataclass of two or more scalar fields: all of them as one tuple, read at
    once (msgpack packs a tuple as the array ``_to_plain``'s list would be). A batch's
    requests went through a list, a ``getattr`` and a ``_to_plain`` call per field:
    two thirds of encoding a PRE-PREPARE of 64 requests (issue 9)."""
    hints = get_type_hints(kind)
    if len(names) < 2 or any(hints[name] not in _SCALAR_HINTS for name in names):
        return None
    getter: Encoder = operator.attrgetter(*names)
    return getter


def _pack(value: object) -> bytes:
    packed: bytes = msgpack.packb(_to_plain(value), use_bin_type=True)
    return packed


def encode_message(message: Message) -> bytes:
    return _pack(message)


def encode_record(record: Record) -> bytes:
    return _pack(record)


def _u64(value: object) -> int:
    if type(value) is not int or not 0 <= value <= U64_MAX:
        raise WireError("expected an unsigned 64-bit integer")
    return value


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise WireError("expected a boolean")
    return value


def _bytes(value: object) -> bytes:
    if type(value) is not bytes:
        raise WireError("expected bytes")
    return value


_SCALAR_DECODERS: dict[Any, Decoder] = {int: _u64, bool: _bool, bytes: _bytes}
_DECODERS: dict[tuple[Any, WireLimits | None], Decoder] = {}


def _decoder(kind: Any, limits: WireLimits | None = None) -> Decoder:
    """The strict decoder of a field type, built once per type and limits (the
    schema is fixed)."""
    decoder = _SCALAR_DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS.get((kind, limits))
        if decoder is None:
            decoder = _DECODERS[kind, limits] = _build_decoder(kind, limits)
    return decoder


def _build_decoder(kind: Any, limits: WireLimits | None) -> Decoder:
    # The schema is not recursive, so plans are built here, not per value.
    origin = get_origin(kind)
    if origin is tuple:
        (item_kind, _) = get_args(kind)
        item = _decoder(item_kind, limits)
        most = sys.maxsize if limits is None else limits.most_items(item_kind)
        if item_kind is Request:
            return _requests_decoder(item, most)

        def array(value: object) -> tuple[Any, ...]:
            if not isinstance(value, list):
                raise WireError("expected an array")
            if len(value) > most:
                raise WireError(f"more than {most} items of {item_kind.__name__}")
            return tuple([item(v) for v in value])

        return array
    if origin in (typing.Union, types.UnionType):
        options = {str(option.__name__): _plan(option, limits) for option in get_args(kind)}
        return lambda value: _tagged(options, value)
    if isinstance(kind, type) and kind in _NESTED:
        plan = _plan(kind, limits)
        return lambda value: _dataclass(plan, value)
    if isinstance(kind, type) and kind in MESSAGE_TYPES.values():
        only = {kind.__name__: _plan(kind, limits)}
        return lambda value: _tagged(only, value)

    def none(value: object) -> Any:
        raise WireError(f"no decoder for {kind!r}")

    return none


def _requests_decoder(item: Decoder, most: int) -> Decoder:
    """A batch's requests: a well-formed ``[request_id, payload]`` is built directly,
    anything else goes through ``item`` (``_dataclass`` of Request's plan), which
    accepts the same and words the error. A PRE-PREPARE carries hundreds of
    requests, and the general path cost every backup about 2 us more per request."""
    low, high = _BYTES_RANGE["request_id"]

    def requests(value: object) -> tuple[Request, ...]:
        if not isinstance(value, list):
            raise WireError("expected an array")
        if len(value) > most:
            raise WireError(f"more than {most} requests")
        out: list[Request] = []
        for v in value:
            if type(v) is list and len(v) == 2:
                request_id, payload = v
                if (
                    type(request_id) is bytes
                    and type(payload) is bytes
                    and low <= len(request_id) <= high
                ):
                    out.append(Request(request_id, payload))
                    continue
            out.append(item(v))
        return tuple(out)

    return requests


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """How to decode one dataclass: its field decoders, and which fields have a
    length rule (``_check_length``), checked after every field decoded."""

    cls: type[Any]
    name: str
    decoders: tuple[Decoder, ...]
    length_checked: tuple[tuple[int, str], ...]


_PLANS: dict[tuple[type[Any], WireLimits | None], _Plan] = {}


def _plan(cls: type[Any], limits: WireLimits | None = None) -> _Plan:
    """``get_type_hints`` and ``dataclasses.fields`` once per class, not per value:
    decoding a batch of hundreds of requests paid them once per request."""
    plan = _PLANS.get((cls, limits))
    if plan is None:
        hints = get_type_hints(cls)
        fields = dataclasses.fields(cls)
        checked = tuple(
            (i, f.name)
            for i, f in enumerate(fields)
            if f.name in _EXACT_BYTES or f.name in _BYTES_RANGE
        )
        decoders = tuple(_decoder(hints[f.name], limits) for f in fields)
        plan = _PLANS[cls, limits] = _Plan(cls, cls.__name__, decoders, checked)
    return plan


def _dataclass(plan: _Plan, value: object) -> Any:
    decoders = plan.decoders
    if not isinstance(value, list) or len(value) != len(decoders):
        raise WireError(f"{plan.name} needs {len(decoders)} fields")
    args = [decode(v) for decode, v in zip(decoders, value, strict=True)]
    for index, name in plan.length_checked:
        _check_length(name, args[index])
    return plan.cls(*args)


def _check_length(name: str, value: object) -> None:
    """Digests and roots have one length, signatures and request ids a range."""
    if not isinstance(value, bytes):
        return
    exact = _EXACT_BYTES.get(name)
    if exact is not None and len(value) != exact:
        raise WireError(f"{name} is not {exact} bytes")
    bounds = _BYTES_RANGE.get(name)
    if bounds is not None and not bounds[0] <= len(value) <= bounds[1]:
        raise WireError(f"{name} is not {bounds[0]}-{bounds[1]} bytes")


def _tagged(plans_by_name: dict[str, _Plan], value: object) -> Any:
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str):
        raise WireError("expected [type name, fields]")
    plan = plans_by_name.get(value[0])
    if plan is None:
        raise WireError(f"unknown type {value[0]!r}")
    return _dataclass(plan, value[1])


def _decode(data: bytes, kind: Any, limits: WireLimits | None) -> Any:
    if len(data) > MAX_WIRE_BYTES:
        raise WireError("too large")
    longest = -1 if limits is None else limits.longest_array  # -1: msgpack's default
    try:
        plain = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True, max_array_len=longest
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise WireError(f"not msgpack: {err}") from err
    decoder = _decoder(kind, limits)  # outside the try: a schema bug is no peer fault
    try:
        value = decoder(plain)
    except (TypeError, RecursionError) as err:
        raise WireError(str(err)) from err
    if _pack(value) != data:
        raise WireError("not the canonical encoding")
    return value


def decode_message(data: bytes, limits: WireLimits | None = None) -> Message:
    """``limits`` (``consensus.bounds.wire_limits(config)``) refuses an array longer
    than an honest message holds before its items are built; a peer's bytes need
    it, since without it only the byte limit bounds the work."""
    message: Message = _decode(data, Message, limits)
    return message


def decode_record(data: bytes, limits: WireLimits | None = None) -> Record:
    record: Record = _decode(data, Record, limits)
    return record


CERTIFICATE_TAG = "veil/consensus/commit-certificate/v1"
MAX_CERTIFICATE_BYTES = 1 << 16
"""A certificate holds 2f+1 (sender, signature) pairs: ~5 KiB for n = 100."""


def encode_certificate(certificate: CommitCertificate) -> bytes:
    """The canonical bytes the ledger stores beside a block.

    ``[tag, view, seq, digest, [[sender, signature], ...]]`` in msgpack, senders
    strictly increasing: every commit signs the certificate's own (view, seq,
    digest), so only who signed and the signature are stored. Refuses a
    certificate whose commits name another triple or repeat a sender.
    """
    triple = (certificate.view, certificate.seq, certificate.digest)
    commits = sorted(certificate.commits, key=lambda c: c.sender)
    for commit in commits:
        if (commit.view, commit.seq, commit.digest) != triple:
            raise WireError("a commit does not match its certificate")
    senders = [c.sender for c in commits]
    if len(set(senders)) != len(senders):
        raise WireError("a certificate repeats a signer")
    body = [[c.sender, c.signature] for c in commits]
    packed: bytes = msgpack.packb([CERTIFICATE_TAG, *triple, body], use_bin_type=True)
    return packed


def decode_certificate(data: bytes) -> CommitCertificate:
    """Strict inverse of ``encode_certificate``: refuses trailing bytes, wrong
    lengths, unsorted or repeated signers and any non-canonical encoding.
    Signatures are not checked here: ``verify_commit_certificate`` does that."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise WireError("too large")
    try:
        plain = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise WireError(f"not msgpack: {err}") from err
    if not isinstance(plain, list) or len(plain) != 5 or plain[0] != CERTIFICATE_TAG:
        raise WireError("not a commit certificate")
    _, view, seq, digest, body = plain
    view = _u64(view)
    seq = _u64(seq)
    digest = _bytes(digest)
    _check_length("digest", digest)
    if not isinstance(body, list) or not body:
        raise WireError("a certificate needs signers")
    commits: list[Commit] = []
    for pair in body:
        if not isinstance(pair, list) or len(pair) != 2:
            raise WireError("expected [sender, signature]")
        sender = _u64(pair[0])
        signature = _bytes(pair[1])
        _check_length("signature", signature)
        if commits and sender <= commits[-1].sender:
            raise WireError("signers are not strictly increasing")
        commits.append(Commit(view, seq, digest, sender, signature))
    certificate = CommitCertificate(view, seq, digest, tuple(commits))
    if encode_certificate(certificate) != data:
        raise WireError("not the canonical encoding")
    return certificate
