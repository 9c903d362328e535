"""The two multiscalar backends behind ``privacy.msm``; see its docstring for the contract."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from privacy import group
from privacy.group import IDENTITY, ORDER, GroupError


class InvalidPointError(GroupError):
    """Point ``index`` of a multiscalar call is not a canonical ristretto255 encoding."""

    def __init__(self, index: int) -> None:
        super().__init__("INVALID_POINT", f"point {index} is not a canonical Ristretto255 encoding")
        self.index = index


@dataclass(frozen=True, slots=True)
class FixedPoints:
    """Trusted points shared by many calls (generators); each backend decodes them once."""

    points: tuple[bytes, ...]
    handles: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Per-backend decoded form, made on first use."""


class Backend(Protocol):
    name: str

    def is_valid_point(self, data: bytes) -> bool: ...

    def msm(
        self,
        scalars: Sequence[int],
        points: Sequence[bytes],
        fixed: FixedPoints | None,
        fixed_scalars: Sequence[int],
    ) -> bytes: ...


def _scalar_bytes(scalars: Sequence[int]) -> bytes:
    return b"".join([(scalar % ORDER).to_bytes(32, "little") for scalar in scalars])


class NativeBackend:
    """Pippenger/Straus in C over libdecaf (``privacy/msm/veil_msm.c``)."""

    name = "native"

    def __init__(self, module: Any) -> None:
        self._ffi = module.ffi
        self._lib = module.lib

    def is_valid_point(self, data: bytes) -> bool:
        return bool(self._lib.veil_point_is_valid(data))

    def _table(self, fixed: FixedPoints) -> Any:
        table = fixed.handles.get(self.name)
        if table is None:
            bad = self._ffi.new("size_t *")
            raw = self._lib.veil_msm_table_new(b"".join(fixed.points), len(fixed.points), bad)
            if raw == self._ffi.NULL:
                if bad[0] < len(fixed.points):
                    raise InvalidPointError(bad[0])
                raise MemoryError("veil_msm_table_new: out of memory")
            table = self._ffi.gc(raw, self._lib.veil_msm_table_free)
            fixed.handles[self.name] = table
        return table

    def msm(
        self,
        scalars: Sequence[int],
        points: Sequence[bytes],
        fixed: FixedPoints | None,
        fixed_scalars: Sequence[int],
    ) -> bytes:
        ffi, lib = self._ffi, self._lib
        table = self._table(fixed) if fixed is not None and fixed_scalars else ffi.NULL
        out = ffi.new("uint8_t[32]")
        bad = ffi.new("size_t *")
        status = lib.veil_msm(
            out,
            _scalar_bytes(scalars),
            b"".join(points),
            len(points),
            table,
            _scalar_bytes(fixed_scalars),
            len(fixed_scalars),
            bad,
        )
        if status == lib.VEIL_MSM_INVALID_POINT:
            raise InvalidPointError(bad[0])
        if status == lib.VEIL_MSM_NO_MEMORY:
            raise MemoryError("veil_msm: out of memory")
        if status != lib.VEIL_MSM_OK:
            raise GroupError("BAD_LENGTH", f"veil_msm refused its table (status {status})")
        return bytes(ffi.buffer(out, 32))


class SodiumBackend:
    """One libsodium multiplication per term (``group.multiscalar_mul``), always available."""

    name = "libsodium"

    def is_valid_point(self, data: bytes) -> bool:
        return group.is_valid_point(data)

    def msm(
        self,
        scalars: Sequence[int],
        points: Sequence[bytes],
        fixed: FixedPoints | None,
        fixed_scalars: Sequence[int],
    ) -> bytes:
        reduced = [scalar % ORDER for scalar in scalars]
        for index, (scalar, point) in enumerate(zip(reduced, points, strict=True)):
            # A multiplication validates its point in libsodium; the shortcuts
            # (skip, add, subtract, fixed base) do not, so validate those here.
            shortcut = scalar in (0, 1, ORDER - 1) or point in (IDENTITY, group.BASEPOINT)
            if shortcut and not group.is_valid_point(point):
                raise InvalidPointError(index)
        all_scalars = reduced
        all_points = list(points)
        if fixed is not None:
            all_scalars = reduced + [scalar % ORDER for scalar in fixed_scalars]
            all_points += fixed.points[: len(fixed_scalars)]
        try:
            return group.multiscalar_mul(all_scalars, all_points)
        except GroupError as err:
            index = _first_invalid(points)
            raise InvalidPointError(index) from err


def _first_invalid(points: Sequence[bytes]) -> int:
    for index, point in enumerate(points):
        if not group.is_valid_point(point):
            return index
    raise GroupError("INVALID_POINT", "libsodium refused a point that validates")


def sodium_backend() -> SodiumBackend:
    return SodiumBackend()


def load_native() -> tuple[NativeBackend | None, str | None]:
    """The native backend, or ``None`` and why it cannot be used."""
    try:
        module = importlib.import_module("privacy.msm._native")
    except ImportError as err:
        return None, f"not built ({err}); run `python -m privacy.msm.build` (make install does)"
    backend = NativeBackend(module)
    # A wrong libdecaf (not ristretto255) would agree on nothing: check the basepoint.
    if backend.msm([1], [group.BASEPOINT], None, ()) != group.BASEPOINT:
        return None, "libdecaf's decaf_255 does not reproduce the ristretto255 basepoint"
    return backend, None
