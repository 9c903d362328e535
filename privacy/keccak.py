"""Keccak-f[1600] in pure Python, on 25 little-endian 64-bit lanes.

Only the Merlin transcript needs it (STROBE-128 is built on the raw permutation,
which hashlib does not expose). The round constants come from the LFSR of the
Keccak reference, and the rho/pi step uses precomputed destination and rotation
tables so each round is a handful of list comprehensions.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

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
    """The permutation written as loops over the step tables: the readable reference.

    ``keccak_f1600`` uses the unrolled ``_permute``; tests check the two agree.
    """
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


def _permute(lanes: Sequence[int]) -> list[int]:
    """The 24 rounds, fully unrolled over 25 local lanes (about 2× the looped speed)."""
    a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12 = lanes[:13]
    a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24 = lanes[13:]
    mask = _MASK
    for rc in _RC:
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24
        d0 = c4 ^ (((c1 << 1) | (c1 >> 63)) & mask)
        d1 = c0 ^ (((c2 << 1) | (c2 >> 63)) & mask)
        d2 = c1 ^ (((c3 << 1) | (c3 >> 63)) & mask)
        d3 = c2 ^ (((c4 << 1) | (c4 >> 63)) & mask)
        d4 = c3 ^ (((c0 << 1) | (c0 >> 63)) & mask)
        b0 = a0 ^ d0
        v = a1 ^ d1
        b10 = ((v << 1) | (v >> 63)) & mask
        v = a2 ^ d2
        b20 = ((v << 62) | (v >> 2)) & mask
        v = a3 ^ d3
        b5 = ((v << 28) | (v >> 36)) & mask
        v = a4 ^ d4
        b15 = ((v << 27) | (v >> 37)) & mask
        v = a5 ^ d0
        b16 = ((v << 36) | (v >> 28)) & mask
        v = a6 ^ d1
        b1 = ((v << 44) | (v >> 20)) & mask
        v = a7 ^ d2
        b11 = ((v << 6) | (v >> 58)) & mask
        v = a8 ^ d3
        b21 = ((v << 55) | (v >> 9)) & mask
        v = a9 ^ d4
        b6 = ((v << 20) | (v >> 44)) & mask
        v = a10 ^ d0
        b7 = ((v << 3) | (v >> 61)) & mask
        v = a11 ^ d1
        b17 = ((v << 10) | (v >> 54)) & mask
        v = a12 ^ d2
        b2 = ((v << 43) | (v >> 21)) & mask
        v = a13 ^ d3
        b12 = ((v << 25) | (v >> 39)) & mask
        v = a14 ^ d4
        b22 = ((v << 39) | (v >> 25)) & mask
        v = a15 ^ d0
        b23 = ((v << 41) | (v >> 23)) & mask
        v = a16 ^ d1
        b8 = ((v << 45) | (v >> 19)) & mask
        v = a17 ^ d2
        b18 = ((v << 15) | (v >> 49)) & mask
        v = a18 ^ d3
        b3 = ((v << 21) | (v >> 43)) & mask
        v = a19 ^ d4
        b13 = ((v << 8) | (v >> 56)) & mask
        v = a20 ^ d0
        b14 = ((v << 18) | (v >> 46)) & mask
        v = a21 ^ d1
        b24 = ((v << 2) | (v >> 62)) & mask
        v = a22 ^ d2
        b9 = ((v << 61) | (v >> 3)) & mask
        v = a23 ^ d3
        b19 = ((v << 56) | (v >> 8)) & mask
        v = a24 ^ d4
        b4 = ((v << 14) | (v >> 50)) & mask
        a0 = b0 ^ (~b1 & b2)
        a1 = b1 ^ (~b2 & b3)
        a2 = b2 ^ (~b3 & b4)
        a3 = b3 ^ (~b4 & b0)
        a4 = b4 ^ (~b0 & b1)
        a5 = b5 ^ (~b6 & b7)
        a6 = b6 ^ (~b7 & b8)
        a7 = b7 ^ (~b8 & b9)
        a8 = b8 ^ (~b9 & b5)
        a9 = b9 ^ (~b5 & b6)
        a10 = b10 ^ (~b11 & b12)
        a11 = b11 ^ (~b12 & b13)
        a12 = b12 ^ (~b13 & b14)
        a13 = b13 ^ (~b14 & b10)
        a14 = b14 ^ (~b10 & b11)
        a15 = b15 ^ (~b16 & b17)
        a16 = b16 ^ (~b17 & b18)
        a17 = b17 ^ (~b18 & b19)
        a18 = b18 ^ (~b19 & b15)
        a19 = b19 ^ (~b15 & b16)
        a20 = b20 ^ (~b21 & b22)
        a21 = b21 ^ (~b22 & b23)
        a22 = b22 ^ (~b23 & b24)
        a23 = b23 ^ (~b24 & b20)
        a24 = b24 ^ (~b20 & b21)
        a0 ^= rc
    head = [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12]
    return [*head, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24]


def keccak_f1600(state: bytearray) -> None:
    """Permute a 200-byte state in place."""
    if len(state) != 200:
        raise ValueError("the Keccak-f[1600] state is 200 bytes")
    lanes = _permute(_LANES.unpack(state))
    _LANES.pack_into(state, 0, *lanes)
