"""Wire/disk encoding: round trips for every message and record, strict rejections."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable

import msgpack
import pytest

from consensus import wire
from consensus.messages import (
    BatchReply,
    FetchBatch,
    Message,
    NewView,
    PreparedCertificate,
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
from consensus.sim.fixtures import checkpoint, commit, header, pre_prepare, prepare, request, signed
from consensus.wire import (
    WireError,
    decode_message,
    decode_record,
    encode_message,
    encode_record,
)

BATCH = (request(1), request(2))
CERT = PreparedCertificate(header(0, 1, BATCH), (prepare(0, 1, BATCH, 1), prepare(0, 1, BATCH, 2)))
PROOF = tuple(checkpoint(4, b"r" * 32, s) for s in (0, 1, 2))
VC = signed(ViewChange(1, 4, b"r" * 32, PROOF, (CERT,), 3))
NV = signed(NewView(1, (VC,), (header(1, 5, BATCH),), 1))
MESSAGES: list[Message] = [
    pre_prepare(0, 1, BATCH),
    pre_prepare(0, 2, ()),
    prepare(0, 1, BATCH, 2),
    commit(3, 9, BATCH, 1),
    checkpoint(8, b"s" * 32, 0),
    VC,
    NV,
    signed(FetchBatch(1, CERT.pre_prepare.digest, 2)),
    signed(BatchReply(1, CERT.pre_prepare.digest, BATCH, CERT.pre_prepare.metadata, 2)),
    signed(Status(3, 7, 1)),
]
RECORDS: list[Record] = [
    ViewRecord(3, False),
    ViewRecord(4, True),
    VoteRecord(prepare(0, 1, BATCH, 2)),
    VoteRecord(NV),
    PreparedRecord(CERT),
    StableCheckpointRecord(4, b"r" * 32, PROOF),
    NewViewRecord(NV),
    BatchRecord(1, CERT.pre_prepare.digest, BATCH, CERT.pre_prepare.metadata),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_record_round_trip(record: Record) -> None:
    assert decode_record(encode_record(record)) == record


def raw(value: object) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        encode_message(MESSAGES[2]) + b"\x00",
        raw(["Prepare", [0, 1, b"d" * 32]]),
        raw(["Prepare", [0, 1, b"d" * 32, 2, b"sig", 9]]),
        raw(["Prepare", [-1, 1, b"d" * 32, 2, b"sig"]]),
        raw(["Prepare", [True, 1, b"d" * 32, 2, b"sig"]]),
        raw(["Prepare", [0, 1, "text", 2, b"sig"]]),
        raw(["Bogus", [0]]),
        raw(["ViewRecord", [1, True]]),
        raw({"Prepare": [0, 1, b"d", 2, b"s"]}),
        raw(["PrePrepare", [0, 1, b"d", [[b"id"]], 0, b"s"]]),
        b"\x92\xa7Prepare\x95\xcd\x00\x00\x01\xc4\x01d\x02\xc4\x01s",
        b"\x91" * 100_000,
    ],
    ids=[
        "empty",
        "reserved-byte",
        "trailing",
        "too-few-fields",
        "too-many-fields",
        "negative",
        "bool-as-int",
        "str-as-bytes",
        "unknown-type",
        "record-as-message",
        "map",
        "short-request",
        "non-minimal-int",
        "deep-nesting",
    ],
)
def test_strict_message_decoding(data: bytes) -> None:
    with pytest.raises(WireError):
        decode_message(data)


def test_records_are_not_messages_and_back() -> None:
    with pytest.raises(WireError):
        decode_record(encode_message(MESSAGES[2]))
    with pytest.raises(WireError):
        decode_record(raw(["ViewRecord", [1, 1]]))


def test_the_schema_is_read_once_per_type_not_once_per_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``dataclasses.fields``, ``is_dataclass`` and ``get_type_hints`` per value were a
    third of a node's CPU under load (docs/performance.md): after a first encode and
    decode, a batch of 300 requests must not consult the schema again."""
    batch = tuple(request(i) for i in range(300))
    message = pre_prepare(0, 1, batch)
    assert decode_message(encode_message(message)) == message  # builds the plans
    calls: list[str] = []

    def counting(name: str, original: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    for name in ("fields", "is_dataclass"):
        monkeypatch.setattr(dataclasses, name, counting(name, getattr(dataclasses, name)))
    hints = counting("hints", typing.get_type_hints)
    monkeypatch.setattr(wire, "get_type_hints", hints)
    assert decode_message(encode_message(message)) == message
    assert calls == []
