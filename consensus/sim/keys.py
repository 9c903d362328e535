"""Cheap, deterministic stand-ins for signing keys (the sim tests the protocol, not ed25519).

A signature is a keyed hash only the key's owner can compute in the simulation:
byzantine replicas get their own ``sign`` but never another replica's secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

SIGNATURE_BYTES = 16


def public_key(index: int) -> bytes:
    return b"sim-validator-%d" % index


def _secret(key: bytes) -> bytes:
    return hashlib.sha256(b"sim-secret/" + key).digest()


def signer(index: int) -> Callable[[bytes], bytes]:
    secret = _secret(public_key(index))

    def sign(data: bytes) -> bytes:
        return hashlib.blake2b(data, key=secret, digest_size=SIGNATURE_BYTES).digest()

    return sign


def verify(key: bytes, data: bytes, signature: bytes) -> bool:
    expected = hashlib.blake2b(data, key=_secret(key), digest_size=SIGNATURE_BYTES).digest()
    return signature == expected
