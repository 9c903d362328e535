"""Which ed25519 signatures the ledger accepts, and checking many at once.

The rule, for a signature ``R || s`` by key ``A`` on message ``M``:

1. ``A`` and ``R`` are canonical encodings (``y < p``) of curve points, neither
   of small order;
2. ``s < ℓ``;
3. ``[8](s·B − k·A − R) = O`` with ``k = SHA-512(R || A || M) mod ℓ``.

Lines 1 and 2 are the checks libsodium's ``crypto_sign_verify_detached``
(``crypto_sign_open``) makes. Line 3 replaces its ``s·B − k·A = R``, which
implies it, so every signature libsodium accepts passes the rule, whatever the
key: chains made before the change replay unchanged. The rule also accepts
signatures where ``R`` (or ``A``) carries a component of order dividing 8.
Only the key's holder can make one (``k`` hashes ``R``'s bytes, so a third
party who adds torsion to ``R`` changes ``k`` and breaks the equation), and it
gains nothing: the tx id does not cover the signature, and the holder can sign
the same tx many ways anyway. The rule does not ask ``A`` to be of prime order.
That check needs a scalar multiplication, and libsodium's own
(``crypto_core_ed25519_is_valid_point``) accepted some points with torsion
before its fix of December 2025 (CVE-2025-69277; PyNaCl 1.6.2 bundles the fix),
so nodes with different libsodium builds would have split on it.

Why the change: the cofactored equation is linear, so a batch of n
signatures is checked by one multiscalar multiplication with random 128-bit
weights (``privacy/msm/veil_ed25519.c``). With libsodium's exact equation a
batch cannot be sound: a torsion component survives a random weight with
probability 1/8, so nodes would disagree. Every node, and every path (batch,
single, with or without the native module), applies this one rule
(docs/privacy.md, "Signatures checked in batches").

``cofactored_reference`` is the executable spec, in libsodium's group
operations; the native code is checked against it
(tests/property/test_signature_rule.py).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Sequence
from typing import Any, Final

from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
    crypto_sign_open,
)
from nacl.exceptions import BadSignatureError
from nacl.exceptions import RuntimeError as NaclRuntimeError

ELL: Final = 2**252 + 27742317777372353535851937790883648493
FIELD_P: Final = 2**255 - 19
IDENTITY: Final = b"\x01" + bytes(31)
WEIGHT_BYTES: Final = 16

Triple = tuple[bytes, bytes, bytes]
"""(public key, message, signature)."""


def _canonical_y(encoding: bytes) -> bool:
    return int.from_bytes(encoding, "little") & ((1 << 255) - 1) < FIELD_P


def _times_eight(point: bytes) -> bytes | None:
    """``[8]P``, or None if ``point`` is not on the curve."""
    try:
        for _ in range(3):
            point = crypto_core_ed25519_add(point, point)
    except NaclRuntimeError:
        return None
    return point


def cofactored_reference(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The rule in the module docstring, step by step (the spec; slow).

    Line 3 is computed as ``(8s)·B − k·[8]A − [8]R = O``: ``[8]A`` and ``[8]R``
    are of prime order, where libsodium's scalar multiplications are defined."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    r, s_bytes = signature[:32], signature[32:]
    s = int.from_bytes(s_bytes, "little")
    if s >= ELL or not _canonical_y(public_key) or not _canonical_y(r):
        return False
    a8, r8 = _times_eight(public_key), _times_eight(r)
    if a8 is None or r8 is None or IDENTITY in (a8, r8):
        return False  # off the curve, or of small order
    k = int.from_bytes(hashlib.sha512(r + public_key + message).digest(), "little") % ELL
    s8 = 8 * s % ELL
    # libsodium refuses a zero scalar (its product would be the identity).
    s8_b = crypto_scalarmult_ed25519_base_noclamp(s8.to_bytes(32, "little")) if s8 else IDENTITY
    k_a8 = crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), a8) if k else IDENTITY
    return crypto_core_ed25519_sub(crypto_core_ed25519_sub(s8_b, k_a8), r8) == IDENTITY


def _load_native() -> Any | None:
    try:
        native = importlib.import_module("privacy.msm._native")
    except ImportError:
        return None
    lib = native.lib
    # A module built from older sources lacks the functions: the spec runs instead.
    # Batches sum on veil_msm.c's own field arithmetic, which its self-test checks.
    if not hasattr(lib, "veil_ed25519_verify_one") or not lib.veil_ed25519_self_test():
        return None
    if not lib.veil_msm_self_test():
        return None
    return native


_NATIVE: Final = _load_native()
NATIVE_BATCH: Final = _NATIVE is not None
"""Whether batches run in C; without it they are checked one at a time."""
_SIG_VALID: Final = 0  # VEIL_SIG_VALID in veil_ed25519.h


def _check_lengths(triples: Sequence[Triple]) -> None:
    """What the C reads: a 32-byte key and a 64-byte signature each."""
    for key, _, signature in triples:
        if len(key) != 32 or len(signature) != 64:
            raise ValueError("a key is 32 bytes and a signature 64")


def _native_batch(triples: Sequence[Triple], weights: bytes) -> tuple[int, int]:
    """The C check of ``triples`` as one sum: (status, first malformed index or -1)."""
    if _NATIVE is None:
        raise RuntimeError("the native signature batch is not built")
    _check_lengths(triples)
    if len(weights) != WEIGHT_BYTES * len(triples):
        raise ValueError(f"{WEIGHT_BYTES} bytes of weight a signature")
    ffi, lib = _NATIVE.ffi, _NATIVE.lib
    ends = []
    end = 0
    for _, message, _ in triples:
        end += len(message)
        ends.append(end)
    bad = ffi.new("size_t *")
    status = lib.veil_ed25519_verify_batch(
        b"".join(signature for _, _, signature in triples),
        b"".join(key for key, _, _ in triples),
        b"".join(message for _, message, _ in triples),
        ffi.new("size_t[]", ends),
        len(triples),
        weights,
        bad,
    )
    if status == lib.VEIL_SIG_NO_MEMORY:
        raise MemoryError("the signature batch could not allocate")
    return status, (-1 if bad[0] == ffi.cast("size_t", -1) else int(bad[0]))


def _native_one(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The C check of one triple, without weights."""
    if _NATIVE is None:
        raise RuntimeError("the native signature check is not built")
    _check_lengths([(public_key, message, signature)])
    status = _NATIVE.lib.veil_ed25519_verify_one(signature, public_key, message, len(message))
    return bool(status == _SIG_VALID)


MIN_BATCH: Final = 4
"""Fewer signatures are checked one by one. The sum has fixed costs (B's term, one
shared inversion) and a term per distinct key: with 4 keys it costs 1.16 times
libsodium a signature at 2, 0.84 at 4, 0.54 at 8 and 0.39 at 16; with a key
each 1.11, 0.84, 0.67 and 0.58 (``sum_n`` in ``python -m benchmarks.signatures
--keys 4|256``; docs/performance.md, "Busy answers at 1,600 attests/s"). It was
16 while the sum re-encoded and decoded every point."""


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """One signature under the rule: the C check (as fast as libsodium's), or
    without it libsodium's answer where it accepts and the spec's where it refuses.
    libsodium is trusted only after the checks of lines 1 and 2 it is known to
    make anyway (1.0.16 and later, as PyNaCl 1.6.2 bundles), made here too so an
    older or a compatibility build cannot accept more."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    if _NATIVE is not None:
        return _native_one(public_key, message, signature)
    r = signature[:32]
    if (
        int.from_bytes(signature[32:], "little") >= ELL
        or not _canonical_y(public_key)
        or not _canonical_y(r)
        or _times_eight(r) in (None, IDENTITY)
        or _times_eight(public_key) in (None, IDENTITY)
    ):
        return False
    try:
        crypto_sign_open(signature + message, public_key)
        return True
    except BadSignatureError:
        return cofactored_reference(public_key, message, signature)


def sum_holds(triples: Sequence[Triple]) -> bool:
    """The C check of well-sized ``triples`` as one weighted sum, at any size: true
    means every signature holds (``verify_batch`` uses it from ``MIN_BATCH`` up);
    false, that one at least does not, or that an encoding is malformed."""
    status, _ = _native_batch(triples, os.urandom(WEIGHT_BYTES * len(triples)))
    return bool(status == _SIG_VALID)


def verify_batch(triples: Sequence[Triple]) -> list[bool]:
    """Each triple's answer under the rule, checked together where possible.

    In C, with fresh random weights (a byzantine signer cannot aim at them).
    Any failure sends every triple to ``verify`` alone: a batch holding a
    forgery costs its sum more than checking one by one (1.36–1.62 times libsodium)."""
    answers = [len(key) == 32 and len(signature) == 64 for key, _, signature in triples]
    todo = [i for i, ok in enumerate(answers) if ok]
    if _NATIVE is not None and len(todo) >= MIN_BATCH and sum_holds([triples[i] for i in todo]):
        return answers
    for i in todo:
        answers[i] = verify(*triples[i])
    return answers
