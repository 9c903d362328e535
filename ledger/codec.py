"""Canonical encoding: msgpack of arrays in a fixed field order, decoded strictly.

Why: every node must hash and sign the same bytes for the same value, and must
refuse anything an attacker could encode two ways. So there are no maps (key
order is ambiguous), no floats (rounding), no extension types, integers are
64-bit, and a byte string decodes only if re-encoding it gives the very same
bytes (this rules out non-minimal integer and length encodings).

Two layers:

* ``encode_value`` / ``decode_value``: the plain values ``None``, ``bool``,
  ``int``, ``bytes``, ``str`` and arrays (lists or tuples; decoded as tuples).
* ``Record``: a frozen dataclass whose fields are encoded as one array in
  declaration order. ``decode_record`` checks the field count and every
  field's type, including fixed byte lengths and integer ranges declared with
  ``Annotated`` (see ``Bytes32``, ``U64``).
"""

from __future__ import annotations

import dataclasses
import operator
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin, get_type_hints

import msgpack

MAX_ENCODED_BYTES = 1 << 20
"""Largest byte string ``decode_value`` accepts (1 MiB): bigger input is refused unread."""

MAX_DEPTH = 16
"""Deepest nesting of arrays accepted: our records never nest deeper."""

INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1

Value = None | bool | int | bytes | str | tuple["Value", ...] | list["Value"]


class EncodeError(TypeError):
    """A value has no canonical encoding (a float, a map, an object...)."""


class DecodeError(ValueError):
    """Bytes are not the canonical encoding of the expected value.

    ``reason`` is a stable machine-readable code; ``str(err)`` explains it.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# --- plain values -----------------------------------------------------------


_PLAIN_LEAVES: frozenset[type[Any]] = frozenset({type(None), bool, bytes, str})
"""Leaf types that need no further check (``int`` needs its range checked)."""


def _check_encodable(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EncodeError(f"nesting deeper than {MAX_DEPTH}")
    if type(value) in _PLAIN_LEAVES:  # the common case, before the isinstance chain
        return
    if value is None or isinstance(value, (bool, bytes, str)):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise EncodeError(f"integer {value} outside the 64-bit range")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            # Leaves are checked here rather than by a call each: records encode
            # mostly arrays of bytes and ints, and the call was most of the cost.
            kind = type(item)
            if kind in _PLAIN_LEAVES:
                if depth + 1 > MAX_DEPTH:
                    raise EncodeError(f"nesting deeper than {MAX_DEPTH}")
            elif kind is int and depth + 1 <= MAX_DEPTH:
                if not INT_MIN <= item <= INT_MAX:
                    raise EncodeError(f"integer {item} outside the 64-bit range")
            else:
                _check_encodable(item, depth + 1)
        return
    raise EncodeError(f"{type(value).__name__} has no canonical encoding")


_PACKERS = threading.local()


def _pack(value: object) -> bytes:
    """msgpack's bytes of ``value`` by this thread's ``Packer``. ``msgpack.packb``
    builds a packer and its buffer on every call: 1.2 µs for a three-field tuple
    against 0.5 µs here, and a validator packs about ten values a tx. (A packer
    resets its buffer after an exception, so a failed call leaves nothing behind.)"""
    try:
        packer = _PACKERS.packer
    except AttributeError:
        packer = _PACKERS.packer = msgpack.Packer(use_bin_type=True)
    packed: bytes = packer.pack(value)
    return packed


def encode_value(value: Value) -> bytes:
    """The canonical bytes of ``value``; raises ``EncodeError`` if it has none."""
    _check_encodable(value, 0)
    try:
        return _pack(value)
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8, so no canonical bytes
        raise EncodeError("a string is not valid Unicode (a lone surrogate)") from None


def bin_header(length: int) -> bytes:
    """The header msgpack (and so ``encode_value``) puts before ``length`` bytes:
    ``bin 8``, ``bin 16`` or ``bin 32``, whichever is the shortest that fits."""
    if length < 1 << 8:
        return b"\xc4" + length.to_bytes(1, "big")
    if length < 1 << 16:
        return b"\xc5" + length.to_bytes(2, "big")
    return b"\xc6" + length.to_bytes(4, "big")


def _refuse_map(_pairs: object) -> object:
    raise DecodeError("MAP", "maps are not allowed in canonical encoding")


def _refuse_ext(code: int, _data: bytes) -> object:
    raise DecodeError("EXT", f"extension type {code} is not allowed")


_DECODED_LEAVES: frozenset[type[Any]] = frozenset({type(None), bool, int, bytes, str})


def _check_decoded(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError("TOO_DEEP", f"nesting deeper than {MAX_DEPTH}")
    if isinstance(value, float):
        raise DecodeError("FLOAT", "floats are not allowed in canonical encoding")
    if isinstance(value, tuple):
        if value and depth + 1 > MAX_DEPTH:
            raise DecodeError("TOO_DEEP", f"nesting deeper than {MAX_DEPTH}")
        for item in value:
            # Leaves (what msgpack returns: these exact types) need no call of their own.
            if type(item) not in _DECODED_LEAVES:
                _check_decoded(item, depth + 1)
    elif not (value is None or isinstance(value, (bool, int, bytes, str))):
        raise DecodeError("TYPE", f"unexpected {type(value).__name__}")


def decode_value(
    data: bytes, *, max_bytes: int = MAX_ENCODED_BYTES, max_array_len: int = -1
) -> Value:
    """Decode canonical bytes into plain values (arrays become tuples).

    Raises ``DecodeError`` for oversize input, maps, floats, extension types,
    invalid UTF-8, trailing bytes, truncation, and any non-canonical form.
    ``max_array_len`` (when not negative) refuses a longer array before its
    items are built: a 16 MiB body of one-byte items is 16 M objects otherwise.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("TYPE", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError("TOO_LARGE", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    if not data:
        raise DecodeError("TRUNCATED", "empty input")
    try:
        value = msgpack.unpackb(
            data,
            use_list=False,
            raw=False,
            strict_map_key=True,
            object_pairs_hook=_refuse_map,
            ext_hook=_refuse_ext,
            max_array_len=max_array_len,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("TRAILING_BYTES", "bytes follow the encoded value") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError("BAD_UTF8", "a string is not valid UTF-8") from exc
    except ValueError as exc:
        if "max_array_len" in str(exc):  # msgpack's words, pinned by a test
            raise DecodeError("TOO_MANY_ITEMS", f"an array is over {max_array_len} items") from exc
        raise DecodeError("MALFORMED", f"not valid msgpack ({type(exc).__name__})") from exc
    except (msgpack.UnpackException, RecursionError) as exc:
        raise DecodeError("MALFORMED", f"not valid msgpack ({type(exc).__name__})") from exc
    _check_decoded(value, 0)
    if _pack(value) != data:
        raise DecodeError("NON_CANONICAL", "a shorter or different encoding exists")
    return typing.cast(Value, value)


# --- records ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FixedLen:
    """Annotated marker: a ``bytes`` field of exactly ``length`` bytes."""

    length: int


@dataclass(frozen=True, slots=True)
class MaxLen:
    """Annotated marker: a ``bytes``/``str``/tuple field of at most ``length`` items."""

    length: int


@dataclass(frozen=True, slots=True)
class IntRange:
    """Annotated marker: an ``int`` field within ``[low, high]``."""

    low: int
    high: int


Bytes32 = Annotated[bytes, FixedLen(32)]
Bytes64 = Annotated[bytes, FixedLen(64)]
U8 = Annotated[int, IntRange(0, (1 << 8) - 1)]
U32 = Annotated[int, IntRange(0, (1 << 32) - 1)]
U64 = Annotated[int, IntRange(0, (1 << 64) - 1)]

R = TypeVar("R", bound="Record")


@dataclass(frozen=True, slots=True)
class Record:
    """Base for encodable records: subclass as ``@dataclass(frozen=True, slots=True)``.

    Fields are encoded as one array in declaration order. Field types may be
    ``int``, ``bool``, ``bytes``, ``str``, another ``Record``, ``tuple[X, ...]``
    of any of these, ``X | None``, and ``Annotated`` forms of them.
    """

    _decoders: ClassVar[dict[type[Any], Callable[[Any, str], Any]]] = {}
    _field_getters: ClassVar[dict[type[Any], Callable[[Any], tuple[Any, ...]]]] = {}

    def to_value(self) -> tuple[Value, ...]:
        getter = Record._field_getters.get(type(self))
        if getter is None:  # once per class: ``dataclasses.fields`` is slow per call
            getter = _fields_getter(tuple(f.name for f in dataclasses.fields(self)))
            Record._field_getters[type(self)] = getter
        values = getter(self)
        for value in values:
            # Most records hold only leaves, returned as they are: one C-level read of
            # every field instead of a generator and a call per field.
            if type(value) not in _FIELD_LEAVES:
                return tuple(_record_field_value(v) for v in values)
        return values

    def encode(self) -> bytes:
        return encode_value(self.to_value())

    @classmethod
    def from_value(cls: type[R], value: object) -> R:
        decoder = _decoder_for_record(cls)
        try:
            return typing.cast(R, decoder(value, _UNNAMED))
        except DecodeError:
            pass
        # Decoding is deterministic: the named pass fails at the same place, and
        # this time its message says where (``TransferBody.outputs[1].commitment``).
        decoder(value, cls.__name__)
        raise DecodeError("INVALID", f"{cls.__name__}: failed once, then decoded")

    @classmethod
    def decode(cls: type[R], data: bytes, *, max_bytes: int = MAX_ENCODED_BYTES) -> R:
        return cls.from_value(decode_value(data, max_bytes=max_bytes))


def decode_record(cls: type[R], data: bytes, *, max_bytes: int = MAX_ENCODED_BYTES) -> R:
    """Decode ``data`` as a ``cls`` record, raising ``DecodeError`` on any mismatch."""
    return cls.decode(data, max_bytes=max_bytes)


_FIELD_LEAVES: frozenset[type[Any]] = frozenset({type(None), bool, int, bytes, str})
"""Field values returned as they are: most fields, so tested before any ``isinstance``."""


def _fields_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of the fields ``names`` of a record, as a tuple in that order."""
    if not names:
        return lambda _record: ()
    if len(names) == 1:
        name = names[0]
        return lambda record: (getattr(record, name),)
    getter: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*names)
    return getter


def _record_field_value(value: object) -> Value:
    if type(value) in _FIELD_LEAVES:
        return typing.cast(Value, value)
    if isinstance(value, Record):
        return value.to_value()
    if isinstance(value, tuple):
        return tuple(_record_field_value(v) for v in value)
    if isinstance(value, list):
        raise EncodeError("record fields hold tuples, not lists (records are immutable)")
    return typing.cast(Value, value)


Decoder = Callable[[Any, str], Any]

_UNNAMED = "<unnamed>"
"""The ``where`` of a first, fast pass: a decoder that gets this very object skips
building the dotted path of each field, which is only needed for an error message
(``Record.from_value`` then decodes again with the path to raise the named error)."""


def _decoder_for_record(cls: type[Record]) -> Decoder:
    cached = Record._decoders.get(cls)
    if cached is not None:
        return cached
    hints = get_type_hints(cls, include_extras=True)
    fields = [(f.name, _decoder_for_type(hints[f.name])) for f in dataclasses.fields(cls)]

    def decode(value: Any, where: str) -> Record:
        if not isinstance(value, tuple):
            raise DecodeError("TYPE", f"{where}: expected an array of {len(fields)} fields")
        if len(value) != len(fields):
            reason = "MISSING_FIELDS" if len(value) < len(fields) else "EXTRA_FIELDS"
            raise DecodeError(reason, f"{where}: expected {len(fields)} fields, got {len(value)}")
        if where is _UNNAMED:
            kwargs = {
                name: dec(item, where) for (name, dec), item in zip(fields, value, strict=False)
            }
        else:
            kwargs = {
                name: dec(item, f"{where}.{name}")
                for (name, dec), item in zip(fields, value, strict=False)
            }
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:  # a record's own __post_init__ checks
            raise DecodeError("INVALID", f"{where}: {exc}") from exc

    fast = _unnamed_pass(cls, [hints[f.name] for f in dataclasses.fields(cls)], fields, decode)
    Record._decoders[cls] = fast
    return fast


_LEAF_KINDS = (bytes, int, bool, str)


def _inline_test(name: str, tp: Any, consts: dict[str, Any]) -> str | None:
    """A Python expression that is true iff field ``name`` of type ``tp`` decodes as
    itself (a leaf, with its markers), its constants put in ``consts``; ``None`` for
    a field that needs its decoder (a record, a tuple, an optional)."""
    base, markers = tp, []
    if get_origin(tp) is Annotated:
        base, *markers = get_args(tp)
    if base not in _LEAF_KINDS:
        return None
    consts[f"K_{name}"] = base
    tests = [f"type({name}) is K_{name}"]
    for index, marker in enumerate(markers):
        const = f"C_{name}_{index}"
        if isinstance(marker, FixedLen) and base in (bytes, str):
            consts[const] = marker.length
            tests.append(f"len({name}) == {const}")
        elif isinstance(marker, MaxLen) and base in (bytes, str):
            consts[const] = marker.length
            tests.append(f"len({name}) <= {const}")
        elif isinstance(marker, IntRange) and base is int:
            consts[f"{const}_low"], consts[f"{const}_high"] = marker.low, marker.high
            tests.append(f"{const}_low <= {name} <= {const}_high")
        elif isinstance(marker, (FixedLen, MaxLen, IntRange)):
            return None  # a marker on another kind: its decoder's rule decides
    return " and ".join(tests)


def _unnamed_pass(
    cls: type[Record], types_: list[Any], fields: list[tuple[str, Decoder]], decode: Decoder
) -> Decoder:
    """``decode`` with a fast first pass compiled for ``cls``: leaf fields tested
    inline and the record built with positional arguments, where the closures per
    field and the dict of keyword arguments were most of a tx's decoding (issue 9,
    CPU per tx; docs/performance.md, "Decoding and encoding without closures per
    field").

    Anything the fast pass does not accept goes to ``decode``, which accepts or
    refuses it as before, with the same error: the fast pass only ever answers
    with what ``decode`` would build (tests/unit/test_codec_fast_paths.py)."""
    dataclass_fields = dataclasses.fields(cls)
    if not fields or any(not f.init or f.kw_only for f in dataclass_fields):
        return decode
    consts: dict[str, Any] = {"cls": cls, "slow": decode, "UNNAMED": _UNNAMED}
    names = [f"f{i}" for i in range(len(fields))]
    tests, args = [], []
    for name, tp, (_, field_decoder) in zip(names, types_, fields, strict=True):
        test = _inline_test(name, tp, consts)
        if test is None:
            consts[f"D_{name}"] = field_decoder
            args.append(f"D_{name}({name}, where)")
        else:
            tests.append(test)
            args.append(name)
    # Only identifiers and constants' names reach the source; their values are in
    # ``consts``, so no field value or marker is ever formatted into code.
    source = "\n".join(
        [
            "def decode(value, where):",
            f"    if where is UNNAMED and type(value) is tuple and len(value) == {len(fields)}:",
            f"        {', '.join(names)}, = value",
            f"        if {' and '.join(tests) or 'True'}:",
            "            try:",
            f"                return cls({', '.join(args)})",
            "            except (ValueError, TypeError):",  # DecodeError too: decode says why
            "                pass",
            "    return slow(value, where)",
        ]
    )
    exec(compile(source, f"<record decoder {cls.__name__}>", "exec"), consts)  # noqa: S102
    fast: Decoder = consts["decode"]
    return fast


def _decoder_for_type(tp: Any) -> Decoder:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *markers = get_args(tp)
        inner = _decoder_for_type(base)
        return _constrained(inner, markers)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) != 1 or len(get_args(tp)) != 2:
            raise TypeError(f"only `X | None` unions are encodable, not {tp}")
        inner = _decoder_for_type(options[0])
        return lambda v, where: None if v is None else inner(v, where)
    if origin is tuple:
        args = get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"only homogeneous tuple[X, ...] fields are encodable, not {tp}")
        item = _decoder_for_type(args[0])

        def decode_tuple(v: Any, where: str) -> tuple[Any, ...]:
            if not isinstance(v, tuple):
                raise DecodeError("TYPE", f"{where}: expected an array")
            if where is _UNNAMED:
                return tuple([item(x, where) for x in v])
            return tuple(item(x, f"{where}[{i}]") for i, x in enumerate(v))

        return decode_tuple
    if isinstance(tp, type) and issubclass(tp, Record):
        return _decoder_for_record(tp)
    if tp is bool:
        return _exact(bool)
    if tp is int:
        return _exact(int)
    if tp is bytes:
        return _exact(bytes)
    if tp is str:
        return _exact(str)
    raise TypeError(f"type {tp!r} is not encodable")


def _exact(kind: type) -> Decoder:
    def check(v: Any, where: str) -> Any:
        # bool is a subclass of int: refuse it where an int is expected and vice versa.
        if type(v) is not kind:
            raise DecodeError("TYPE", f"{where}: expected {kind.__name__}, got {type(v).__name__}")
        return v

    return check


def _constrained(inner: Decoder, markers: list[Any]) -> Decoder:
    """``inner``, then each marker's rule; the rules are picked once here, not by
    ``isinstance`` on every decoded value."""
    rules: list[Callable[[Any, str], None]] = []
    for m in markers:
        if isinstance(m, FixedLen):
            rules.append(_fixed_len_rule(m))
        if isinstance(m, MaxLen):
            rules.append(_max_len_rule(m))
        if isinstance(m, IntRange):
            rules.append(_int_range_rule(m))

    def check(v: Any, where: str) -> Any:
        out = inner(v, where)
        for rule in rules:
            rule(out, where)
        return out

    return check


def _fixed_len_rule(m: FixedLen) -> Callable[[Any, str], None]:
    def rule(out: Any, where: str) -> None:
        if len(out) != m.length:
            raise DecodeError("BAD_LENGTH", f"{where}: expected {m.length} bytes, got {len(out)}")

    return rule


def _max_len_rule(m: MaxLen) -> Callable[[Any, str], None]:
    def rule(out: Any, where: str) -> None:
        if len(out) > m.length:
            raise DecodeError("TOO_LONG", f"{where}: more than {m.length} items")

    return rule


def _int_range_rule(m: IntRange) -> Callable[[Any, str], None]:
    def rule(out: Any, where: str) -> None:
        if not m.low <= out <= m.high:
            raise DecodeError("OUT_OF_RANGE", f"{where}: {out} outside [{m.low}, {m.high}]")

    return rule
