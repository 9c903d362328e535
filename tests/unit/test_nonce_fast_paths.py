"""The nonce record's fast paths (issue 9, CPU per attest) read and write exactly what
the plain codec does: ``decode_canonical_uint`` answers only for the canonical
encoding of an unsigned integer, with ``decode_value``'s value, and ``encode_uint``
gives ``encode_value``'s bytes (or its refusal) for any value."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import (
    INT_MAX,
    INT_MIN,
    DecodeError,
    EncodeError,
    Value,
    decode_value,
    encode_value,
)
from ledger.rules import U64_MAX, decode_canonical_uint, encode_uint, last_nonce
from ledger.state import NS_NONCE, StateView, state_key
from ledger.store import MemoryStore

u64 = st.integers(min_value=0, max_value=U64_MAX)
any_int = st.integers(min_value=INT_MIN - 5, max_value=INT_MAX + 5)


def _plain_decode(raw: bytes) -> Value | DecodeError:
    try:
        return decode_value(raw)
    except DecodeError as exc:
        return exc


def _msgpack_forms(value: int) -> list[bytes]:
    """Every msgpack encoding of ``value``: canonical and longer forms alike."""
    forms = [msgpack.packb(value)]
    for marker, size in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
        if value < 1 << (8 * size):
            forms.append(bytes([marker]) + value.to_bytes(size, "big"))
    return forms


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=10), u64.flatmap(lambda v: st.sampled_from(_msgpack_forms(v)))))
def test_the_fast_decode_answers_only_with_the_plain_decoders_int(raw: bytes) -> None:
    fast = decode_canonical_uint(raw)
    plain = _plain_decode(raw)
    if fast is not None:
        assert type(plain) is int and plain == fast


@settings(max_examples=500)
@given(u64)
def test_every_canonical_uint_takes_the_fast_path(value: int) -> None:
    assert decode_canonical_uint(encode_value(value)) == value
    for longer in _msgpack_forms(value)[1:]:
        if longer != encode_value(value):
            assert decode_canonical_uint(longer) is None  # not canonical: the plain path refuses


@settings(max_examples=500)
@given(st.one_of(any_int, st.booleans(), st.none(), st.binary(max_size=3)))
def test_the_fast_encode_gives_the_plain_bytes_or_refusal(value: Value) -> None:
    try:
        plain: bytes | type[EncodeError] = encode_value(value)
    except EncodeError:
        plain = EncodeError
    if plain is EncodeError:
        with pytest.raises(EncodeError):
            encode_uint(value)  # type: ignore[arg-type]
    else:
        assert encode_uint(value) == plain  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.binary(max_size=10))
def test_last_nonce_reads_any_stored_bytes_as_the_plain_decoder(raw: bytes) -> None:
    signer = b"\x07" * 32
    view = StateView(MemoryStore())
    view.put(state_key(NS_NONCE, signer), raw)
    plain = _plain_decode(raw)
    if isinstance(plain, int):
        assert last_nonce(view, signer) == plain
    else:
        with pytest.raises(DecodeError):
            last_nonce(view, signer)
