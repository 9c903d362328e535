"""Which ed25519 signatures the ledger accepts, and checking many at once.

The rule, for a signature ``R || s`` by key ``A`` on message ``M``:

1. ``A`` is a canonical encoding of a point of prime order ℓ (the check
   ``identity.ed25519_key_problem`` makes; every registered key passed it);
2. ``s < ℓ``;
3. ``R`` is a canonical encoding (``y < p``) of a curve point not of small
   order;
4. ``[8](s·B − k·A − R) = O`` with ``k = SHA-512(R || A || M) mod ℓ``.

This is libsodium's ``crypto_sign_verify_detached`` (``crypto_sign_open``) but for line 4, where
libsodium asks ``s·B − k·A = R`` exactly. Every signature libsodium accepts
satisfies the rule; the rule also accepts an ``R`` moved by a point of order
dividing 8, which only the key's holder can make (``k`` hashes ``R``'s bytes,
so a third party who adds torsion to ``R`` changes ``k`` and breaks the
equation). Such a signature gains its maker nothing: the tx id does not
cover the signature, and the holder can sign the same tx many ways anyway.

Why the change: the cofactored equation is linear, so a batch of n
signatures is checked by one multiscalar multiplication with random 128-bit
weights (``privacy/msm/veil_ed25519.c``), about 3.5 times cheaper a signature
than libsodium's check one at a time (docs/performance.md, "Signatures in
batches"). With libsodium's exact equation a batch cannot be sound: a
torsion component survives a random weight with probability 1/8, so nodes
would disagree. Every node, and every path (batch, single, with or without
the native module), applies this one rule.

``cofactored_reference`` is the executable spec, in libsodium's group
operations; the native code is checked against it
(tests/property/test_signature_rule.py).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_is_valid_point,
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


def _times_eight(point: bytes) -> bytes:
    for _ in range(3):
        point = crypto_core_ed25519_add(point, point)
    return point


def cofactored_reference(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The rule in the module docstring, step by step (the spec; slow)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    if not crypto_core_ed25519_is_valid_point(public_key):
        return False
    r, s_bytes = signature[:32], signature[32:]
    s = int.from_bytes(s_bytes, "little")
    if s >= ELL or not _canonical_y(r):
        return False
    try:
        if _times_eight(r) == IDENTITY:  # raises if R is not on the curve
            return False
    except NaclRuntimeError:
        return False
    k = int.from_bytes(hashlib.sha512(r + public_key + message).digest(), "little") % ELL
    # libsodium refuses a zero scalar (its product would be the identity).
    s_b = crypto_scalarmult_ed25519_base_noclamp(s_bytes) if s else IDENTITY
    k_a = crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), public_key) if k else IDENTITY
    difference = crypto_core_ed25519_sub(crypto_core_ed25519_sub(s_b, k_a), r)
    return _times_eight(difference) == IDENTITY


def _load_native() -> Any | None:
    try:
        native = importlib.import_module("privacy.msm._native")
    except ImportError:
        return None
    lib = native.lib
    # A module built from older sources lacks the functions: the spec runs instead.
    if not hasattr(lib, "veil_ed25519_verify_one") or not lib.veil_ed25519_self_test():
        return None
    return native


_NATIVE: Final = _load_native()
NATIVE_BATCH: Final = _NATIVE is not None
_SIG_VALID: Final = 0  # VEIL_SIG_VALID in veil_ed25519.h
"""Whether batches run in C; without it they are checked one at a time."""

_valid_keys: dict[bytes, bool] = {}
_MAX_VALID_KEYS: Final = 65_536


def key_is_valid(public_key: bytes) -> bool:
    """Rule 1, remembered per key: a node meets the same few thousand keys again
    and again, and libsodium's subgroup check costs a scalar multiplication."""
    known = _valid_keys.get(public_key)
    if known is None:
        known = len(public_key) == 32 and bool(crypto_core_ed25519_is_valid_point(public_key))
        if len(_valid_keys) >= _MAX_VALID_KEYS:
            _valid_keys.clear()
        _valid_keys[public_key] = known
    return known


def _native_batch(triples: Sequence[Triple], weights: bytes) -> tuple[int, int]:
    """The C check of ``triples`` (keys already valid): (status, bad index or -1)."""
    if _NATIVE is None:
        raise RuntimeError("the native signature batch is not built")
    ffi, lib = _NATIVE.ffi, _NATIVE.lib
    messages = b"".join(message for _, message, _ in triples)
    ends = []
    end = 0
    for _, message, _ in triples:
        end += len(message)
        ends.append(end)
    bad = ffi.new("size_t *")
    status = lib.veil_ed25519_verify_batch(
        b"".join(signature for _, _, signature in triples),
        b"".join(key for key, _, _ in triples),
        messages,
        ffi.new("size_t[]", ends),
        len(triples),
        weights,
        bad,
    )
    if status == lib.VEIL_SIG_NO_MEMORY:
        raise MemoryError("the signature batch could not allocate")
    return status, (-1 if bad[0] == ffi.cast("size_t", -1) else int(bad[0]))


MIN_BATCH: Final = 8
"""Fewer signatures are checked one by one: the sum's fixed costs (B's term, the
points' re-encoding) make a batch of 4 cost 1.25 times libsodium a signature, of
6 as much, of 8 0.8 times (``python -m benchmarks.signatures``)."""

_checked_ahead: OrderedDict[Triple, None] = OrderedDict()
_checked_ahead_lock = threading.Lock()
MAX_CHECKED_AHEAD: Final = 8_192
"""Triples a batch accepted, for ``verify`` to find. An entry is used within the
same event-loop turn as a rule, so the bound only drops leftovers (txs a busy
mempool refused before their signature was asked for)."""


def check_ahead(triples: Sequence[Triple]) -> int:
    """Check ``triples`` as one batch and remember those that pass, so that
    ``verify`` answers each at once, once. Returns how many passed."""
    answers = verify_batch(triples)
    with _checked_ahead_lock:
        for triple, ok in zip(triples, answers, strict=True):
            if ok:
                _checked_ahead[triple] = None
        while len(_checked_ahead) > MAX_CHECKED_AHEAD:
            _checked_ahead.popitem(last=False)
    return sum(answers)


def _native_one(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The C check of one triple (key already valid), without weights."""
    if _NATIVE is None:
        raise RuntimeError("the native signature check is not built")
    status = _NATIVE.lib.veil_ed25519_verify_one(signature, public_key, message, len(message))
    return bool(status == _SIG_VALID)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """One signature under the rule. A triple ``check_ahead`` accepted is taken
    (and forgotten). Else the C check (60 µs here, libsodium's 67), or without
    it libsodium first, which honest signatures pass (what it accepts, the rule
    does), and the spec for what libsodium refuses."""
    with _checked_ahead_lock:
        if _checked_ahead.pop((public_key, message, signature), 0) is None:
            return True
    if len(signature) != 64 or not key_is_valid(public_key):
        return False
    if _NATIVE is not None:
        return _native_one(public_key, message, signature)
    try:
        crypto_sign_open(signature + message, public_key)
        return True
    except BadSignatureError:
        return cofactored_reference(public_key, message, signature)


def verify_batch(triples: Sequence[Triple]) -> list[bool]:
    """Each triple's answer under the rule, checked together where possible.

    In C, with fresh random weights (a byzantine signer cannot aim at them):
    one failure sends every triple to ``verify`` alone, so a batch with a bad
    signature costs its batch check more than checking one by one."""
    answers = [len(signature) == 64 and key_is_valid(key) for key, _, signature in triples]
    if _NATIVE is None or len(triples) < MIN_BATCH:
        return [ok and verify(*triple) for ok, triple in zip(answers, triples, strict=True)]
    todo = [i for i, ok in enumerate(answers) if ok]
    if len(todo) >= MIN_BATCH:
        batch = [triples[i] for i in todo]
        status, _ = _native_batch(batch, os.urandom(WEIGHT_BYTES * len(batch)))
        if status == _SIG_VALID:
            return answers
    # A bad signature (or encoding) in the batch: find it one by one. Retrying
    # the rest in C could cost a decode per signature per culprit.
    for i in todo:
        answers[i] = verify(*triples[i])
    return answers
