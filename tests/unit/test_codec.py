"""Strict canonical decoding: every way to encode a value twice is refused."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated

import msgpack
import pytest

from ledger.codec import (
    MAX_DEPTH,
    MAX_ENCODED_BYTES,
    U64,
    Bytes32,
    DecodeError,
    EncodeError,
    MaxLen,
    Record,
    decode_record,
    decode_value,
    encode_value,
)


@dataclass(frozen=True, slots=True)
class Inner(Record):
    key: Bytes32
    amount: U64


@dataclass(frozen=True, slots=True)
class Outer(Record):
    label: str
    flag: bool
    items: tuple[Inner, ...]
    note: bytes | None


@dataclass(frozen=True, slots=True)
class Bounded(Record):
    name: Annotated[str, MaxLen(3)]
    blob: Annotated[bytes, MaxLen(2)]
    items: Annotated[tuple[U64, ...], MaxLen(1)]


SAMPLE = Outer("x", True, (Inner(b"\x01" * 32, 7),), None)


def reason(data: bytes, cls: type[Record] | None = None) -> str:
    with pytest.raises(DecodeError) as err:
        if cls is None:
            decode_value(data)
        else:
            decode_record(cls, data)
    return err.value.reason


def test_record_round_trip() -> None:
    assert decode_record(Outer, SAMPLE.encode()) == SAMPLE


def test_record_is_an_array_in_field_order() -> None:
    assert decode_value(SAMPLE.encode()) == ("x", True, ((b"\x01" * 32, 7),), None)


def test_map_where_tuple_expected() -> None:
    assert reason(msgpack.packb({"key": b"\x01" * 32, "amount": 7}), Inner) == "MAP"


def test_float_refused_anywhere() -> None:
    assert reason(msgpack.packb(1.5)) == "FLOAT"
    assert reason(msgpack.packb([1, [2, 0.0]])) == "FLOAT"
    with pytest.raises(EncodeError):
        encode_value((1, 2.0))  # type: ignore[arg-type]


def test_extra_and_missing_fields() -> None:
    assert reason(encode_value((b"\x01" * 32, 7, 8)), Inner) == "EXTRA_FIELDS"
    assert reason(encode_value((b"\x01" * 32,)), Inner) == "MISSING_FIELDS"


def test_trailing_bytes() -> None:
    assert reason(SAMPLE.encode() + b"\x00", Outer) == "TRAILING_BYTES"


def test_truncated_and_empty() -> None:
    assert reason(SAMPLE.encode()[:-1], Outer) == "MALFORMED"
    assert reason(b"") == "TRUNCATED"


def test_oversize_input_refused_before_parsing() -> None:
    big = encode_value(b"\x00" * MAX_ENCODED_BYTES)
    assert reason(big) == "TOO_LARGE"
    assert decode_value(encode_value(b"ab"), max_bytes=4) == b"ab"
    with pytest.raises(DecodeError):
        decode_value(encode_value(b"abcd"), max_bytes=4)


def test_non_minimal_integer_encoding_refused() -> None:
    # 5 as uint32 (0xce) instead of a positive fixint.
    assert reason(b"\xce\x00\x00\x00\x05") == "NON_CANONICAL"


def test_str_and_bytes_are_distinct_types() -> None:
    assert reason(encode_value(("x", True, (), "not-bytes")), Outer) == "TYPE"
    assert reason(encode_value((b"x", True, (), None)), Outer) == "TYPE"


def test_bool_is_not_an_int() -> None:
    assert reason(encode_value((b"\x01" * 32, True)), Inner) == "TYPE"
    assert reason(encode_value(("x", 1, (), None)), Outer) == "TYPE"


def test_fixed_length_and_range_constraints() -> None:
    assert reason(encode_value((b"\x01" * 31, 7)), Inner) == "BAD_LENGTH"
    assert reason(encode_value((b"\x01" * 32, -1)), Inner) == "OUT_OF_RANGE"


def test_maximum_lengths() -> None:
    assert decode_record(Bounded, encode_value(("abc", b"ab", (1,)))) == Bounded("abc", b"ab", (1,))
    assert reason(encode_value(("abcd", b"ab", (1,))), Bounded) == "TOO_LONG"
    assert reason(encode_value(("abc", b"abc", (1,))), Bounded) == "TOO_LONG"
    assert reason(encode_value(("abc", b"ab", (1, 2))), Bounded) == "TOO_LONG"


def test_ext_types_refused() -> None:
    assert reason(msgpack.packb(msgpack.ExtType(5, b"abc"))) == "EXT"


def test_invalid_utf8_refused() -> None:
    assert reason(b"\xa2\xff\xfe") == "BAD_UTF8"


def test_encode_refuses_maps_objects_and_big_ints() -> None:
    for bad in ({"a": 1}, object(), 1 << 64, -(1 << 63) - 1, {1, 2}):
        with pytest.raises(EncodeError):
            encode_value(bad)  # type: ignore[arg-type]


def test_deep_nesting_refused() -> None:
    deep: object = ()
    for _ in range(40):
        deep = (deep,)
    assert reason(msgpack.packb(deep)) == "TOO_DEEP"


def test_garbage_never_raises_anything_but_decode_error() -> None:
    import random

    rng = random.Random(1234)
    for _ in range(3000):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        with contextlib.suppress(DecodeError):
            decode_record(Outer, blob)


def test_a_leaf_one_level_too_deep_is_refused_and_one_at_the_limit_is_not() -> None:
    """Leaves are checked inline, without a call of their own: the depth limit still
    counts them, as when every item was checked by its own call."""
    for leaf in (1, b"x", "s", None, True):
        at_limit: object = leaf
        for _ in range(MAX_DEPTH):
            at_limit = (at_limit,)
        assert decode_value(msgpack.packb(at_limit)) == at_limit
        assert reason(msgpack.packb((at_limit,))) == "TOO_DEEP"
    assert reason(msgpack.packb((1, 2.5))) == "FLOAT"


def test_a_failed_encoding_leaves_nothing_for_the_next() -> None:
    """Encoding reuses one msgpack packer per thread: a value it fails on midway
    (a lone surrogate passes the type checks) must not leave bytes behind."""
    with pytest.raises(EncodeError, match="lone surrogate"):
        encode_value(("ok", b"\x01" * 40, "\ud800"))
    assert encode_value(SAMPLE.to_value()) == msgpack.packb(SAMPLE.to_value())


def test_an_array_over_max_array_len_is_refused_before_its_items_are_built() -> None:
    """A peer's 16 MiB frame of one-byte items was 16 M objects before any count
    check ran; the bound is msgpack's, so the items are never built."""
    assert decode_value(encode_value((b"",) * 5), max_array_len=5) == (b"",) * 5
    for value in ((b"",) * 6, (1, (b"",) * 6)):
        with pytest.raises(DecodeError) as caught:
            decode_value(encode_value(value), max_array_len=5)
        assert caught.value.reason == "TOO_MANY_ITEMS"
    assert len(decode_value(encode_value((b"",) * 6))) == 6  # no bound by default
