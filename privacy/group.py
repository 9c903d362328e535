"""Ristretto255 group layer: Python-int scalars, 32-byte canonical points, libsodium ops.

Why this shape: a libsodium call costs microseconds of FFI overhead, while
Python integer arithmetic mod ℓ costs well under one, so scalars stay ints and
only point operations cross into libsodium (through ``rbcl``). Points are kept
as their canonical 32-byte encodings, which is what libsodium takes anyway.

Measured on the dev machine (2 cores): variable-base scalar multiplication
≈ 55–80 µs, fixed-base ≈ 17 µs, point addition ≈ 16 µs, point validation ≈ 6 µs.

libsodium's ``crypto_scalarmult_ristretto255`` fails with the same error both
for an invalid point and when the *result* is the identity (scalar 0 mod ℓ, or
identity input). We validate inputs first and short-circuit zero scalars and
the identity, so a failure here means exactly one thing.

Canonical encodings (RFC 9496 §4.3.1): the libsodium bundled by ``rbcl``
(1.0.18) ignores bit 255 when it decodes a point, so without a check of our own
every point would have a second accepted encoding, and ``00…80`` would decode
to the identity without being byte-equal to ``IDENTITY`` (so the identity
shortcuts below miss it and libsodium's multiplication then fails). Every
function here that takes a point refuses bit 255 itself: ``is_valid_point``
and ``all_valid_points`` say False, the others raise ``GroupError`` INVALID_POINT.
With bit 255 clear, libsodium's check is exactly RFC
9496's, so libsodium's own decoding (in ``mul``, ``add``, ``sub``) is a full
validation.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import rbcl

ORDER = 2**252 + 27742317777372353535851937790883648493
"""ℓ, the prime order of the Ristretto255 group."""

POINT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY = bytes(32)
"""The canonical encoding of the identity element (all zero)."""


class GroupError(ValueError):
    """Bad group input. ``reason`` is a stable code: NON_CANONICAL_SCALAR, INVALID_POINT,
    IDENTITY_POINT, BAD_LENGTH. A set bit 255 is INVALID_POINT, as RFC 9496 has it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# --- scalars ----------------------------------------------------------------


def scalar_from_bytes(data: bytes) -> int:
    """Decode a canonical little-endian scalar; values >= ℓ are refused, as dalek does."""
    if len(data) != SCALAR_BYTES:
        raise GroupError("BAD_LENGTH", f"a scalar is {SCALAR_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "little")
    if value >= ORDER:
        raise GroupError("NON_CANONICAL_SCALAR", "scalar is not reduced mod ℓ")
    return value


def scalar_to_bytes(value: int) -> bytes:
    return (value % ORDER).to_bytes(SCALAR_BYTES, "little")


def scalar_from_wide(data: bytes) -> int:
    """Reduce 64 uniformly random bytes mod ℓ (dalek's ``from_bytes_mod_order_wide``)."""
    if len(data) != 64:
        raise GroupError("BAD_LENGTH", "a wide scalar is 64 bytes")
    return int.from_bytes(data, "little") % ORDER


def random_scalar() -> int:
    """A uniform non-zero scalar from the OS CSPRNG (bias 2^-256 from wide reduction)."""
    while True:
        value = scalar_from_wide(secrets.token_bytes(64))
        if value:
            return value


def scalar_inverse(value: int) -> int:
    value %= ORDER
    if value == 0:
        raise ZeroDivisionError("zero scalar has no inverse")
    return pow(value, -1, ORDER)


# --- points -----------------------------------------------------------------


def has_high_bit(data: bytes) -> bool:
    """True when bit 255 of a 32-byte encoding is set: never canonical (RFC 9496).

    Callers check the length first; this is one byte test, cheap enough for
    every point of a batch.
    """
    return data[31] >= 0x80


def is_valid_point(data: bytes) -> bool:
    """True for a canonical Ristretto255 encoding (the identity included)."""
    return (
        isinstance(data, bytes)
        and len(data) == POINT_BYTES
        and data[31] < 0x80
        and bool(rbcl.crypto_core_ristretto255_is_valid_point(data))
    )


def all_valid_points(points: Sequence[bytes]) -> bool:
    """True when every item is a canonical Ristretto255 encoding (the identity included).

    The same check as ``is_valid_point`` on each, in one pass without the
    per-call overhead; strict parsers use it as a fast path and fall back to
    ``point_from_bytes`` one by one to report which point is bad.
    """
    if not all(isinstance(p, bytes) and len(p) == POINT_BYTES and p[31] < 0x80 for p in points):
        return False
    return all(map(rbcl.crypto_core_ristretto255_is_valid_point, points))


def point_from_bytes(data: bytes, *, allow_identity: bool = True) -> bytes:
    """Validate a point encoding and return it; refuse the identity when asked to.

    dalek's ``CompressedRistretto::decompress`` accepts the identity, but the
    range-proof verifier refuses an identity A, S, T1 or T2 commitment; callers
    that need that pass ``allow_identity=False``.
    """
    if not isinstance(data, bytes | bytearray):
        raise GroupError("BAD_LENGTH", "a point is 32 bytes")
    if len(data) != POINT_BYTES:
        raise GroupError("BAD_LENGTH", f"a point is {POINT_BYTES} bytes, got {len(data)}")
    data = bytes(data)
    _refuse_high_bit(data)
    if not rbcl.crypto_core_ristretto255_is_valid_point(data):
        raise GroupError("INVALID_POINT", "not a canonical Ristretto255 encoding")
    if not allow_identity and data == IDENTITY:
        raise GroupError("IDENTITY_POINT", "the identity is not allowed here")
    return data


def _refuse_high_bit(point: bytes) -> None:
    """Raise INVALID_POINT (or BAD_LENGTH) unless ``point`` may be handed to libsodium."""
    if not isinstance(point, bytes) or len(point) != POINT_BYTES:
        raise GroupError("BAD_LENGTH", f"a point is {POINT_BYTES} bytes")
    if point[31] >= 0x80:
        raise GroupError("INVALID_POINT", "bit 255 is set (RFC 9496 refuses it)")


def add(p: bytes, q: bytes) -> bytes:
    """``p + q``; raises GroupError for a non-canonical or invalid operand.

    Adding the identity returns the other operand as it is (no libsodium call,
    so an invalid one is not noticed here): callers validate their inputs.
    """
    _refuse_high_bit(p)
    _refuse_high_bit(q)
    if p == IDENTITY:
        return q
    if q == IDENTITY:
        return p
    out: bytes = rbcl.crypto_core_ristretto255_add(p, q)
    if out == IDENTITY:
        _refuse_invalid_operands(p, q)
    return out


def sub(p: bytes, q: bytes) -> bytes:
    """``p − q``; raises GroupError for a non-canonical or invalid operand
    (subtracting the identity returns ``p`` as it is, as in ``add``)."""
    _refuse_high_bit(p)
    _refuse_high_bit(q)
    if q == IDENTITY:
        return p
    out: bytes = rbcl.crypto_core_ristretto255_sub(p, q)
    if out == IDENTITY:
        _refuse_invalid_operands(p, q)
    return out


def _refuse_invalid_operands(p: bytes, q: bytes) -> None:
    """rbcl ignores libsodium's return code in add/sub and hands back its zeroed
    output buffer, the identity's encoding, for an invalid operand. A true sum is
    the identity only when ``p = ±q``, so this check runs only on that rare result."""
    if not (is_valid_point(p) and is_valid_point(q)):
        raise GroupError("INVALID_POINT", "not a canonical Ristretto255 encoding")


def neg(p: bytes) -> bytes:
    return sub(IDENTITY, p) if p != IDENTITY else p


def mul(scalar: int, point: bytes) -> bytes:
    """``scalar · point``; raises GroupError for a non-canonical or invalid encoding.

    Bit 255 is refused here; libsodium decodes the rest exactly as
    ``is_valid_point`` does and fails on an invalid one; with a non-zero scalar
    and a non-identity point of a prime-order group that is its only failure
    (the result is never the identity).
    """
    _refuse_high_bit(point)
    scalar %= ORDER
    if scalar == 0 or point == IDENTITY:
        return IDENTITY
    try:
        out: bytes = rbcl.crypto_scalarmult_ristretto255(scalar.to_bytes(32, "little"), point)
    except RuntimeError as err:
        raise GroupError("INVALID_POINT", "not a canonical Ristretto255 encoding") from err
    return out


def mul_base(scalar: int) -> bytes:
    """``scalar · G`` with the Ristretto basepoint, through libsodium's fixed-base table."""
    scalar %= ORDER
    if scalar == 0:
        return IDENTITY
    out: bytes = rbcl.crypto_scalarmult_ristretto255_base(scalar.to_bytes(32, "little"))
    return out


BASEPOINT = mul_base(1)
"""The Ristretto255 basepoint, dalek's ``RISTRETTO_BASEPOINT_POINT`` (Pedersen ``G``)."""


def multiscalar_mul(scalars: Sequence[int], points: Sequence[bytes]) -> bytes:
    """Σ scalars[i] · points[i].

    With libsodium exposing only single scalar multiplication, the fastest
    CPython strategy is one scalar multiplication per distinct point: windowed
    methods (Straus, Pippenger) need more additions than they save, because an
    addition costs ~16 µs against ~60 µs for a full multiplication. Callers
    lower the cost by merging terms that share a point before calling, which
    is exactly what batch verification does with the generators. Scalars of 1
    and ℓ−1 become additions and subtractions.
    """
    if len(scalars) != len(points):
        raise ValueError("multiscalar_mul needs as many scalars as points")
    acc = IDENTITY
    for raw_scalar, point in zip(scalars, points, strict=True):
        scalar = raw_scalar % ORDER
        if scalar == 0 or point == IDENTITY:
            continue
        if scalar == 1:
            acc = add(acc, point)
        elif scalar == ORDER - 1:
            acc = sub(acc, point)
        elif point == BASEPOINT:
            acc = add(acc, mul_base(scalar))
        else:
            acc = add(acc, mul(scalar, point))
    return acc


def hash_to_point(uniform_bytes: bytes) -> bytes:
    """Ristretto255 ``from_hash`` (Elligator2 twice) of 64 uniform bytes."""
    if len(uniform_bytes) != 64:
        raise GroupError("BAD_LENGTH", "from_hash takes 64 bytes")
    out: bytes = rbcl.crypto_core_ristretto255_from_hash(uniform_bytes)
    return out


def hash_to_scalar(*parts: bytes) -> int:
    """A scalar from SHA-512 over length-prefixed parts (for sigma-proof challenges)."""
    digest = hashlib.sha512()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return scalar_from_wide(digest.digest())
