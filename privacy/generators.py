"""Generators, identical to dalek-cryptography/bulletproofs.

* ``PEDERSEN_G`` is the Ristretto255 basepoint (dalek ``PedersenGens::B``).
* ``PEDERSEN_H`` is ``from_hash(SHA3-512(G))`` (dalek ``PedersenGens::B_blinding``).
* The vector generators of party ``j`` are read from the SHAKE256 stream
  ``"GeneratorsChain" || b"G" || LE32(j)`` (or ``b"H"``) in 64-byte blocks, each
  mapped to a point with ristretto255 ``from_hash`` (dalek ``GeneratorsChain``).

``bulletproof_generators(bits, parties)`` returns them in dalek's party-major
order: index ``j·bits + i`` is the ``i``-th generator of party ``j``. Each
party's chain is computed once and cached; a chain never depends on ``bits``,
so longer requests only extend it.
"""

from __future__ import annotations

import functools
import hashlib

from privacy.group import BASEPOINT, hash_to_point

PEDERSEN_G: bytes = BASEPOINT
PEDERSEN_H: bytes = hash_to_point(hashlib.sha3_512(PEDERSEN_G).digest())

_CHAIN_DOMAIN = b"GeneratorsChain"
_BLOCK = 64
_MIN_CHAIN = 64
"""Chains are computed at least this long, so every supported bit size shares one cache entry."""


@functools.lru_cache(maxsize=256)
def _party_chain(kind: bytes, party: int, count: int) -> tuple[bytes, ...]:
    shake = hashlib.shake_256()
    shake.update(_CHAIN_DOMAIN)
    shake.update(kind + party.to_bytes(4, "little"))
    stream = shake.digest(_BLOCK * count)
    return tuple(hash_to_point(stream[k * _BLOCK : (k + 1) * _BLOCK]) for k in range(count))


def _chain(kind: bytes, party: int, bits: int) -> tuple[bytes, ...]:
    count = max(bits, _MIN_CHAIN)
    if count & (count - 1):
        count = 1 << count.bit_length()
    return _party_chain(kind, party, count)[:bits]


@functools.lru_cache(maxsize=64)
def bulletproof_generators(bits: int, parties: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """``(G_vec, H_vec)``, each of length ``bits·parties`` in dalek's party-major order."""
    if bits <= 0 or parties <= 0:
        raise ValueError("bits and parties must be positive")
    if parties >= 2**32:
        raise ValueError("party index must fit in 32 bits")
    g_vec: list[bytes] = []
    h_vec: list[bytes] = []
    for party in range(parties):
        g_vec.extend(_chain(b"G", party, bits))
        h_vec.extend(_chain(b"H", party, bits))
    return tuple(g_vec), tuple(h_vec)
