"""Keccak-f[1600] in pure Python, on 25 little-endian 64-bit lanes.

Only the Merlin transcript needs it (STROBE-128 is built on the raw permutation,
which hashlib does not expose). The round constants come from the LFSR of the
Keccak reference, and the rho/pi step uses precomputed destination and rotation
tables so each round is a handful of list comprehensions.
"""

from __future__ import annotations

import struct

_MASK = (1 << 64) - 1

_ROTATIONS = (
    0, 1, 62, 28, 27,
    36, 44, 6, 55, 20,
    3, 10, 43, 25, 39,
    41, 45, 15, 21, 8,
    18, 2, 61, 56, 14,
)  # fmt: skip
"""ρ offsets, indexed by lane ``x + 5·y``."""


def _round_constants() -> tuple[int, ...]:
    def rc_bit(t: int) -> int:
        register = 1
        for _ in range(t % 255):
            register <<= 1
            if register & 0x100:
                register ^= 0x171
        return register & 1

    constants = []
    for round_index in range(24):
        value = 0
        for j in range(7):
            if rc_bit(j + 7 * round_index):
                value |= 1 << ((1 << j) - 1)
        constants.append(value)
    return tuple(constants)


_RC = _round_constants()
# π moves lane (x, y) to (y, 2x + 3y); chi reads lanes x+1 and x+2 of the same row.
_PI_DEST = tuple(y + 5 * ((2 * x + 3 * y) % 5) for y in range(5) for x in range(5))
_STEPS = tuple((i, _PI_DEST[i], _ROTATIONS[i], 64 - _ROTATIONS[i], i % 5) for i in range(25))
_CHI = tuple((i, 5 * (i // 5) + (i + 1) % 5, 5 * (i // 5) + (i + 2) % 5) for i in range(25))
_LANES = struct.Struct("<25Q")


def keccak_f1600_lanes(lanes: list[int]) -> list[int]:
    """Apply the 24-round permutation to 25 lanes and return the new lanes."""
    a = lanes
    mask = _MASK
    steps = _STEPS
    chi = _CHI
    for rc in _RC:
        c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20]
        c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21]
        c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22]
        c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23]
        c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24]
        d = (
            c4 ^ (((c1 << 1) | (c1 >> 63)) & mask),
            c0 ^ (((c2 << 1) | (c2 >> 63)) & mask),
            c1 ^ (((c3 << 1) | (c3 >> 63)) & mask),
            c2 ^ (((c4 << 1) | (c4 >> 63)) & mask),
            c3 ^ (((c0 << 1) | (c0 >> 63)) & mask),
        )
        b = [0] * 25
        for src, dst, rot, back, col in steps:
            v = a[src] ^ d[col]
            b[dst] = ((v << rot) | (v >> back)) & mask
        a = [b[i] ^ (~b[i1] & b[i2]) for i, i1, i2 in chi]
        a[0] ^= rc
    return a


def keccak_f1600(state: bytearray) -> None:
    """Permute a 200-byte state in place."""
    if len(state) != 200:
        raise ValueError("the Keccak-f[1600] state is 200 bytes")
    lanes = keccak_f1600_lanes(list(_LANES.unpack(state)))
    _LANES.pack_into(state, 0, *lanes)
