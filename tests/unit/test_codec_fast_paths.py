"""The codec's fast paths (issue 9, CPU per transfer) accept and refuse exactly what
the plain code did, with the same reasons and messages.

- ``encode_value`` checks array leaves inline; ``_reference_check`` below is the
  recursive check it replaced, verbatim.
- ``Record.to_value`` reads every field at once and returns a record of leaves as
  it is; the reference maps every field through the isinstance chain.
- ``Record.from_value`` first decodes without building each field's dotted path
  and, only if that fails, decodes again with the path: the reference is that
  named pass alone (the only pass before). That first pass is compiled per record
  class (leaves tested inline, the record built positionally); whatever it does
  not accept goes to the named pass, so both must agree on every field kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    U8,
    U64,
    Bytes32,
    DecodeError,
    EncodeError,
    MaxLen,
    Record,
    _decoder_for_record,
    _record_field_value,
    encode_value,
)
from ledger.tx import TransferBody, Tx, TxOutput


def _reference_check(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EncodeError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, (bool, bytes, str)):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise EncodeError(f"integer {value} outside the 64-bit range")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _reference_check(item, depth + 1)
        return
    raise EncodeError(f"{type(value).__name__} has no canonical encoding")


def _outcome(run: Any) -> tuple[str, str]:
    try:
        return ("ok", repr(run()))
    except (EncodeError, DecodeError) as exc:
        return (type(exc).__name__, str(exc))


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.sampled_from([INT_MIN, INT_MIN - 1, INT_MAX, INT_MAX + 1, 0, 255, 1 << 32]),
    st.binary(max_size=40),
    st.text(max_size=8),
    st.floats(allow_nan=False),
    st.builds(bytearray, st.binary(max_size=4)),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.lists(inner, max_size=5).map(tuple)),
    max_leaves=40,
)


def _nest(value: object, levels: int) -> object:
    for _ in range(levels):
        value = (value,)
    return value


@settings(max_examples=300, deadline=None)
@given(_values, st.integers(min_value=0, max_value=MAX_DEPTH + 2))
def test_encode_value_refuses_exactly_what_the_recursive_check_refused(
    value: object, levels: int
) -> None:
    nested = _nest(value, levels)  # reach the depth limit with leaves and ints at it

    def reference() -> bytes:
        _reference_check(nested, 0)
        return encode_value(typing_cast(nested))

    assert_same(_outcome(lambda: encode_value(typing_cast(nested))), _outcome(reference))


def typing_cast(value: object) -> Any:
    return value


def assert_same(new: tuple[str, str], old: tuple[str, str]) -> None:
    if new != old:
        raise AssertionError(f"fast path {new} differs from the reference {old}")


def _valid_transfer() -> TransferBody:
    output = TxOutput(b"\x01" * 32, b"\x02" * 32, b"\x03" * 60, b"\x04" * 60)
    return TransferBody(
        sender=b"\x05" * 32,
        asset=b"\x06" * 32,
        inputs=(b"\x07" * 33,),
        outputs=(output, output),
        range_proof=b"\x08" * 100,
    )


def _replace_leaf(value: object, path: list[int], new: object) -> object:
    """``value`` with the item at ``path`` (indices, each taken modulo the length) replaced."""
    if not path or not isinstance(value, tuple) or not value:
        return new
    index = path[0] % len(value)
    items = list(value)
    items[index] = _replace_leaf(items[index], path[1:], new)
    return tuple(items)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["transfer", "tx"]),
    st.lists(st.integers(min_value=0, max_value=7), max_size=4),
    _values,
)
def test_from_value_matches_the_named_pass(kind: str, path: list[int], new: object) -> None:
    body = _valid_transfer()
    cls: type[Record]
    if kind == "transfer":
        cls, valid = TransferBody, body.to_value()
    else:
        cls = Tx
        valid = Tx(b"transfer", body.encode(), b"\x09" * 64, b"\x0a" * 64).to_value()
    mutated = _replace_leaf(valid, path, new)
    named = _decoder_for_record(cls)
    assert_same(
        _outcome(lambda: cls.from_value(mutated)),
        _outcome(lambda: named(mutated, cls.__name__)),
    )


def test_a_failed_fast_pass_names_the_field() -> None:
    value = _replace_leaf(_valid_transfer().to_value(), [3, 1, 1], b"\x01" * 31)
    outcome = _outcome(lambda: TransferBody.from_value(value))
    assert_same(
        outcome,
        (
            "DecodeError",
            "BAD_LENGTH: TransferBody.outputs[1].commitment: expected 32 bytes, got 31",
        ),
    )


def _reference_field_value(value: object) -> object:
    if isinstance(value, Record):
        return value.to_value()
    if isinstance(value, tuple):
        return tuple(_reference_field_value(v) for v in value)
    if isinstance(value, list):
        raise EncodeError("record fields hold tuples, not lists (records are immutable)")
    return value


@settings(max_examples=300, deadline=None)
@given(_values)
def test_record_field_values_match_the_isinstance_chain(value: object) -> None:
    """``to_value`` returns leaf fields as they are before any ``isinstance``: the
    same values, and the same refusal of lists, as the chain it shortcuts."""
    assert_same(
        _outcome(lambda: _record_field_value(value)),
        _outcome(lambda: _reference_field_value(value)),
    )


@dataclass(frozen=True, slots=True)
class _OneField(Record):
    only: bytes


@dataclass(frozen=True, slots=True)
class _ThreeFields(Record):
    first: bytes
    second: int
    third: str


@dataclass(frozen=True, slots=True)
class _Nesting(Record):
    head: bytes
    inner: _ThreeFields
    many: tuple[_OneField, ...]


def _reference_to_value(record: Record) -> tuple[object, ...]:
    """``Record.to_value`` before its fast path: every field through the isinstance chain."""
    return tuple(
        _reference_field_value(getattr(record, f.name)) for f in dataclasses.fields(record)
    )


_field_values = st.one_of(_values, st.builds(_OneField, _values))


@settings(max_examples=300, deadline=None)
@given(st.lists(_field_values, min_size=6, max_size=6))
def test_to_value_matches_the_field_by_field_reference(values: list[object]) -> None:
    """``to_value`` reads every field at once and returns them as they are when all are
    leaves: the same tuple, and the same refusal of a list, as field by field."""
    records: list[Record] = [
        _OneField(values[0]),  # type: ignore[arg-type]
        _ThreeFields(values[0], values[1], values[2]),  # type: ignore[arg-type]
        _Nesting(
            values[3],  # type: ignore[arg-type]
            _ThreeFields(values[4], values[5], values[0]),  # type: ignore[arg-type]
            (_OneField(values[1]), _OneField(values[2])),  # type: ignore[arg-type]
        ),
        Tx(b"transfer", values[0], values[1], values[2]),  # type: ignore[arg-type]
    ]
    for record in records:
        assert_same(
            _outcome(lambda r=record: r.to_value()),
            _outcome(lambda r=record: _reference_to_value(r)),
        )


def test_a_record_of_leaves_encodes_as_before() -> None:
    tx = Tx(b"transfer", b"\x01" * 10, b"\x09" * 64, b"")
    assert tx.to_value() == (b"transfer", b"\x01" * 10, b"\x09" * 64, b"")
    assert Tx.decode(tx.encode()) == tx


@dataclass(frozen=True, slots=True)
class _EveryKind(Record):
    """One field of each kind the compiled first pass tests inline or hands on."""

    flag: bool
    small: U8
    big: U64
    signed: int
    digest: Bytes32
    label: Annotated[str, MaxLen(4)]
    blob: Annotated[bytes, MaxLen(3)]
    maybe: Bytes32 | None
    few: Annotated[tuple[bytes, ...], MaxLen(2)]
    inner: _ThreeFields

    def __post_init__(self) -> None:
        if self.small == 7:
            raise ValueError("seven is refused by the record itself")


def _every_kind_value() -> tuple[object, ...]:
    inner = _ThreeFields(b"x", 1, "y")
    return _EveryKind(
        True, 3, 1 << 40, -5, b"\x01" * 32, "ab", b"z", None, (b"q",), inner
    ).to_value()


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=11), min_size=1, max_size=3),
    st.one_of(_values, st.sampled_from([7, 255, 256, -1, 1 << 64, True, b"\x01" * 32, "abcde"])),
)
def test_the_compiled_first_pass_matches_the_named_pass_on_every_field_kind(
    path: list[int], new: object
) -> None:
    """Leaves with each marker, an optional, a bounded tuple, a nested record and a
    ``__post_init__`` refusal: ``from_value`` (compiled first pass, then the named
    one on failure) gives what the named pass alone gives, value or error."""
    mutated = _replace_leaf(_every_kind_value(), path, new)
    named = _decoder_for_record(_EveryKind)
    assert_same(
        _outcome(lambda: _EveryKind.from_value(mutated)),
        _outcome(lambda: named(mutated, _EveryKind.__name__)),
    )


def test_the_compiled_first_pass_decodes_a_valid_record_of_every_kind() -> None:
    value = _every_kind_value()
    decoded = _EveryKind.from_value(value)
    assert decoded.to_value() == value
    refused = _replace_leaf(value, [1], 7)
    assert _outcome(lambda: _EveryKind.from_value(refused)) == (
        "DecodeError",
        "INVALID: _EveryKind: seven is refused by the record itself",
    )
