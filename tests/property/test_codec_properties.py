"""Round-trip and uniqueness properties of the canonical encoding."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.codec import INT_MAX, INT_MIN, DecodeError, decode_value, encode_value

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=INT_MIN, max_value=INT_MAX)
    | st.binary(max_size=64)
    | st.text(max_size=32)
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5).map(tuple), max_leaves=30)


@given(values)
def test_round_trip(value: Any) -> None:
    assert decode_value(encode_value(value)) == value


@given(values)
def test_lists_and_tuples_encode_alike(value: Any) -> None:
    as_list = list(value) if isinstance(value, tuple) else [value]
    as_tuple = tuple(as_list)
    assert encode_value(as_list) == encode_value(as_tuple)


@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_always_refused(value: Any, tail: bytes) -> None:
    try:
        decode_value(encode_value(value) + tail)
    except DecodeError:
        return
    raise AssertionError("trailing bytes were accepted")


@st.composite
def near_encodings(draw: st.DrawFn) -> bytes:
    """A valid encoding with one byte changed: random bytes alone rarely decode at all,
    while these often do, in a non-minimal or otherwise different form."""
    blob = bytearray(encode_value(draw(values)))
    blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    return bytes(blob)


@given(st.one_of(st.binary(max_size=64), near_encodings()))
def test_decoding_is_injective_on_accepted_bytes(blob: bytes) -> None:
    """Whatever decodes must re-encode to the very same bytes."""
    try:
        value = decode_value(blob)
    except DecodeError:
        return
    assert encode_value(value) == blob
