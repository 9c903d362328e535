"""The wire codec's fast path for a batch's requests (issue 9, CPU per attest) builds
exactly what the general per-dataclass decoder builds, and refuses exactly what it
refuses, with the same message."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import wire
from consensus.messages import (
    MAX_REQUEST_ID_BYTES,
    Message,
    Prepare,
    PrePrepare,
    ProposalMetadata,
    Request,
)
from consensus.persistence import Record
from consensus.wire import WireError, decode_message, encode_message, encode_record
from tests.unit.test_consensus_wire import MESSAGES, RECORDS


def _reference(value: object) -> tuple[Request, ...]:
    """The tuple decoder before the fast path, for ``tuple[Request, ...]``."""
    if not isinstance(value, list):
        raise WireError("expected an array")
    return tuple([wire._dataclass(wire._plan(Request), v) for v in value])


def _outcome(decode: Callable[[object], object], value: object) -> tuple[str, str]:
    try:
        return ("ok", repr(decode(value)))
    except WireError as exc:
        return ("WireError", str(exc))


_scalars = st.one_of(
    st.binary(min_size=0, max_size=MAX_REQUEST_ID_BYTES + 2),
    st.text(max_size=3),
    st.integers(min_value=-2, max_value=1 << 65),
    st.booleans(),
    st.none(),
)
_items = st.one_of(
    st.tuples(st.binary(min_size=1, max_size=MAX_REQUEST_ID_BYTES), st.binary(max_size=40)).map(
        list
    ),
    st.lists(_scalars, max_size=3),
    st.tuples(_scalars, _scalars).map(list),
    st.tuples(_scalars, _scalars),
    _scalars,
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(_items, max_size=6), _scalars, st.tuples(_items)))
def test_the_request_batch_decoder_matches_the_general_one(value: object) -> None:
    fast = wire._decoder(tuple[Request, ...])
    assert _outcome(fast, value) == _outcome(_reference, value)


def test_a_valid_batch_takes_the_fast_path_and_round_trips() -> None:
    batch = tuple(Request(bytes([i]) * 32, b"payload %d" % i) for i in range(5))
    fast = wire._decoder(tuple[Request, ...])
    assert fast([[r.request_id, r.payload] for r in batch]) == batch
    message = PrePrepare(0, 1, b"d" * 32, batch, ProposalMetadata(5, 0), 0, b"s" * 64)
    assert decode_message(encode_message(message)) == message


def _reference_plain(value: object) -> object:
    """``_to_plain`` before dataclasses of scalars were read as one tuple: a list of
    every field through ``_to_plain``, tagged unless the type is a nested one."""
    if type(value) in wire._SCALARS:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [_reference_plain(getattr(value, f.name)) for f in dataclasses.fields(value)]
        return fields if type(value) in wire._NESTED else [type(value).__name__, fields]
    if isinstance(value, tuple):
        return [_reference_plain(item) for item in value]
    return value


def _reference_bytes(value: object) -> bytes:
    packed: bytes = msgpack.packb(_reference_plain(value), use_bin_type=True)
    return packed


@pytest.mark.parametrize("value", [*MESSAGES, *RECORDS], ids=lambda v: type(v).__name__)
def test_every_message_and_record_encodes_as_the_field_by_field_reference(value: object) -> None:
    if isinstance(value, Message):
        encoded = encode_message(value)
    else:
        encoded = encode_record(typing.cast(Record, value))
    assert encoded == _reference_bytes(value)


_ints = st.integers(min_value=0, max_value=(1 << 64) - 1)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.binary(min_size=1, max_size=64), st.binary(max_size=300)), max_size=8),
    _ints,
    _ints,
    st.binary(max_size=40),
)
def test_scalar_dataclasses_encode_as_the_field_by_field_reference(
    requests: list[tuple[bytes, bytes]], timestamp_ms: int, view: int, digest: bytes
) -> None:
    """Requests, metadata and votes are read as one tuple of their fields: the same
    bytes as the list the reference builds, so nodes on either code agree."""
    batch = tuple(Request(request_id, payload) for request_id, payload in requests)
    metadata = ProposalMetadata(timestamp_ms, view)
    for message in (
        PrePrepare(view, timestamp_ms, digest, batch, metadata, 1, b"s" * 64),
        Prepare(view, timestamp_ms, digest, 2, b"s" * 64),
    ):
        assert encode_message(message) == _reference_bytes(message)
