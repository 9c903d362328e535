"""Multiscalar multiplication ``Σ s_i·P_i`` over ristretto255 encodings, with two backends.

- ``native``: Pippenger (or Straus for a few terms) in C over libdecaf, built
  by ``python -m privacy.msm.build`` (``make install`` runs it). About 5–9 µs
  per term, against ~47 µs for one libsodium multiplication per term.
- ``libsodium``: one constant-time libsodium multiplication per term (rbcl),
  always present.

The native backend is preferred when it is built. ``VEIL_MSM_BACKEND`` set to
``native`` or ``libsodium`` forces one (``native`` then fails loudly if it is
not built). Both backends have the same contract, checked by
tests/property/test_msm_backends.py:

- every point in ``points`` must be a canonical ristretto255 encoding (the
  identity included), whatever its scalar, else ``InvalidPointError``
  (a ``GroupError`` with reason ``INVALID_POINT`` and the ``index`` of the first
  bad point);
- scalars are any ints, taken mod ℓ;
- ``fixed`` points are trusted (validated once, when their table is made) and
  multiplied by ``fixed_scalars``, at most one scalar per fixed point.

Only verification uses this module: it handles public data, so variable time
is fine (docs/privacy.md). Proving keeps libsodium's constant-time operations.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence

from privacy.msm.backends import (
    Backend,
    FixedPoints,
    InvalidPointError,
    ProductVector,
    ScalarVector,
    bit_products,
    load_native,
    sodium_backend,
)

__all__ = [
    "FixedPoints",
    "InvalidPointError",
    "ProductVector",
    "ScalarVector",
    "available_backends",
    "backend_name",
    "bit_products",
    "fixed_points",
    "is_valid_point",
    "multiscalar_mul",
    "native_unavailable_reason",
    "scalar_vector",
    "use_backend",
]

BACKEND_ENV = "VEIL_MSM_BACKEND"

_native, _native_problem = load_native()
_BACKENDS: dict[str, Backend] = {"libsodium": sodium_backend()}
if _native is not None:
    _BACKENDS["native"] = _native


def _initial_backend() -> Backend:
    forced = os.environ.get(BACKEND_ENV, "")
    if forced == "native" and _native is None:
        raise ImportError(f"{BACKEND_ENV}=native, but the native backend is not: {_native_problem}")
    if forced and forced not in ("native", "libsodium"):
        raise ImportError(f"{BACKEND_ENV}={forced!r}: expected 'native' or 'libsodium'")
    if forced:
        return _BACKENDS[forced]
    return _native if _native is not None else _BACKENDS["libsodium"]


_current: list[Backend] = [_initial_backend()]


def backend_name() -> str:
    """``"native"`` or ``"libsodium"``: the backend verification uses now (for logs and metrics)."""
    return _current[0].name


def available_backends() -> tuple[str, ...]:
    """The backends this process can use, the preferred one first."""
    return tuple(sorted(_BACKENDS, key=lambda name: name != "native"))


def native_unavailable_reason() -> str | None:
    """Why the native backend cannot be used (``None`` when it can)."""
    return _native_problem


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run a block with backend ``name`` (tests and benchmarks compare the two)."""
    if name not in _BACKENDS:
        raise ValueError(f"backend {name!r} is not available here: {available_backends()}")
    previous = _current[0]
    _current[0] = _BACKENDS[name]
    try:
        yield
    finally:
        _current[0] = previous


@functools.lru_cache(maxsize=16)
def fixed_points(points: tuple[bytes, ...]) -> FixedPoints:
    """A table of trusted points, decoded once per process and backend; invalid ones raise."""
    for index, point in enumerate(points):
        if not is_valid_point(point):
            raise InvalidPointError(index)
    return FixedPoints(points)


def is_valid_point(data: bytes) -> bool:
    """True for a canonical ristretto255 encoding, as the current backend decodes it."""
    return isinstance(data, bytes) and len(data) == 32 and _current[0].is_valid_point(data)


def scalar_vector(size: int) -> ScalarVector:
    """Zero scalars for ``size`` fixed points, to be summed into slot by slot.

    With the native backend the sums live in C (a batch's generator scalars
    then cost no Python operation per slot); pass the vector as ``fixed_scalars``.
    """
    if size < 0:
        raise ValueError("a scalar vector has a non-negative size")
    return _current[0].scalar_vector(size)


def multiscalar_mul(
    scalars: Sequence[int],
    points: Sequence[bytes],
    *,
    fixed: FixedPoints | None = None,
    fixed_scalars: Sequence[int] | ScalarVector = (),
) -> bytes:
    """``Σ scalars[i]·points[i] + Σ fixed_scalars[k]·fixed[k]``, encoded.

    Raises ``InvalidPointError`` for the first point of ``points`` that is not
    a canonical encoding (a wrong length or a non-bytes item included).
    """
    if len(scalars) != len(points):
        raise ValueError("multiscalar_mul needs as many scalars as points")
    fixed_count = len(fixed_scalars) if isinstance(fixed_scalars, Sequence) else fixed_scalars.size
    if fixed_count and (fixed is None or fixed_count > len(fixed.points)):
        raise ValueError("more fixed scalars than fixed points")
    for index, point in enumerate(points):
        if not isinstance(point, bytes) or len(point) != 32:
            raise InvalidPointError(index)
    return _current[0].msm(scalars, points, fixed, fixed_scalars)
