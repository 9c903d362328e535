"""Pedersen commitments ``C = value·G + blinding·H`` over Ristretto255.

``G`` and ``H`` are dalek's ``PedersenGens::default()`` (see ``privacy.generators``).
``value·G`` uses libsodium's fixed-base table, so a commitment costs one
fixed-base and one variable-base multiplication.
"""

from __future__ import annotations

from privacy.generators import PEDERSEN_H
from privacy.group import add, mul, mul_base


def commit(value: int, blinding: int) -> bytes:
    """The commitment ``value·G + blinding·H`` (both scalars taken mod ℓ)."""
    return add(mul_base(value), mul(blinding, PEDERSEN_H))
