"""X25519 memo keys: which 32-byte strings may enter the state as a memo key.

Every output carries two ``privacy.memo`` sealed boxes, one to its owner's
X25519 key and one to the auditor's. A sealed box to a **small-order** point
cannot be made: the X25519 shared secret with it is all-zero whatever the
ephemeral scalar (clamped scalars are multiples of 8, and these points have
order 1, 2, 4 or 8), and libsodium refuses it. A memo key like that in the
state would make every payment to the account (or, for the auditor key, every
issue and transfer) fail to build, so it is refused wherever a memo key enters
the state: ``register_account``, ``register_member``, ``set_auditor_key`` and
the genesis.

Curve25519 and its twist have exactly five small-order u-coordinates: 0 (order
2), 1 and p − 1 (order 4, one on the curve and one on its twist) and two of
order 8 (doubling one gives u = 1, doubling again u = 0).

X25519 (RFC 7748) ignores the top bit of a public key and reduces u modulo p,
so the same points also have non-canonical encodings (u = p and p + 1, and
any of them with bit 255 set). The check masks the top bit and reduces before
comparing, so it refuses every encoding of them: the set libsodium's
``has_small_order`` refuses. Other non-canonical encodings are accepted: they
name an ordinary point and seal exactly as its canonical form does.
"""

from __future__ import annotations

from typing import Final

MEMO_KEY_BYTES: Final = 32
FIELD_PRIME: Final = 2**255 - 19
"""p, the Curve25519 field prime."""

SMALL_ORDER_U: Final = frozenset(
    {
        0,
        1,
        FIELD_PRIME - 1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
    }
)
"""The u-coordinates (reduced mod p) of the points of order 1, 2, 4 and 8."""


def memo_key_problem(key: bytes) -> str | None:
    """Why ``key`` cannot be an X25519 memo key, or ``None`` if it can."""
    if len(key) != MEMO_KEY_BYTES:
        return f"a memo key is {MEMO_KEY_BYTES} bytes, not {len(key)}"
    u = (int.from_bytes(key, "little") & ((1 << 255) - 1)) % FIELD_PRIME
    if u in SMALL_ORDER_U:
        return "a small-order X25519 point (no memo can be sealed to it)"
    return None


def is_valid_memo_key(key: bytes) -> bool:
    return memo_key_problem(key) is None
