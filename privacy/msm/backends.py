"""The two multiscalar backends behind ``privacy.msm``; see its docstring for the contract."""

from __future__ import annotations

import importlib
import operator
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


@dataclass(frozen=True, slots=True)
class ProductVector:
    """``v_i = seed · Π_{r : bit r of i is set} factors[r]`` for ``i < 2^len(factors)``."""

    seed: int
    factors: tuple[int, ...]


def bit_products(seed: int, factors: Sequence[int]) -> list[int]:
    """``ProductVector(seed, factors)`` as ints, unreduced (each below ℓ², congruent mod ℓ).

    Two tables of reduced partial products (low bits from ``seed``, high bits
    from 1) built by doubling, then one multiplication per entry without a
    reduction.
    """
    split = (len(factors) + 1) // 2
    low = [seed % ORDER]
    for factor in factors[:split]:
        low += [v * factor % ORDER for v in low]
    high = [1]
    for factor in factors[split:]:
        high += [v * factor % ORDER for v in high]
    return [v * w for w in high for v in low]


class ScalarVector(Protocol):
    """Scalars for a fixed table, summed slot by slot (a batch's generator scalars)."""

    size: int

    def add_products(self, first: int, stride: int, low_bits: int, vector: ProductVector) -> None:
        """Add entry ``i`` of ``vector`` to slot ``first + (i >> low_bits)·stride + i % 2^low_bits``
        (rows of ``2^low_bits`` entries, ``stride`` slots apart)."""

    def add_constant(self, first: int, count: int, value: int) -> None:
        """Add ``value`` to slots ``first`` .. ``first + count − 1``."""

    def to_ints(self) -> list[int]:
        """Every slot, reduced mod ℓ."""


def _check_layout(size: int, first: int, stride: int, low_bits: int, rounds: int) -> None:
    row = 1 << low_bits
    rows = 1 << (rounds - low_bits) if 0 <= low_bits <= rounds else 0
    if (
        not rows
        or first < 0
        or (rows > 1 and stride < row)
        or first + (rows - 1) * stride + row > size
    ):
        raise ValueError(f"products of {rounds} rounds do not fit at slot {first} of {size}")


class PyScalarVector:
    """Python ints, reduced once at the end (the libsodium backend's vector)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.values = [0] * size

    def add_products(self, first: int, stride: int, low_bits: int, vector: ProductVector) -> None:
        _check_layout(self.size, first, stride, low_bits, len(vector.factors))
        products = bit_products(vector.seed, [factor % ORDER for factor in vector.factors])
        row = 1 << low_bits
        values = self.values
        for k in range(len(products) >> low_bits):
            lo = first + k * stride
            values[lo : lo + row] = map(
                operator.add, values[lo : lo + row], products[k * row : (k + 1) * row]
            )

    def add_constant(self, first: int, count: int, value: int) -> None:
        if first < 0 or count < 0 or first + count > self.size:
            raise ValueError(f"slots {first}..{first + count} are outside a vector of {self.size}")
        values = self.values
        for slot in range(first, first + count):
            values[slot] += value

    def to_ints(self) -> list[int]:
        return [value % ORDER for value in self.values]


class Backend(Protocol):
    name: str

    def is_valid_point(self, data: bytes) -> bool: ...

    def scalar_vector(self, size: int) -> ScalarVector: ...

    def msm(
        self,
        scalars: Sequence[int],
        points: Sequence[bytes],
        fixed: FixedPoints | None,
        fixed_scalars: Sequence[int] | ScalarVector,
    ) -> bytes: ...


def _scalar_bytes(scalars: Sequence[int]) -> bytes:
    return b"".join([(scalar % ORDER).to_bytes(32, "little") for scalar in scalars])


class NativeScalarVector:
    """Scalars mod ℓ in C (``veil_scalars.c``): a batch's generator scalars without
    a Python operation per slot."""

    def __init__(self, module: Any, size: int) -> None:
        self._ffi = module.ffi
        self._lib = module.lib
        raw = self._lib.veil_scalars_new(size)
        if raw == self._ffi.NULL:
            raise MemoryError("veil_scalars_new: out of memory")
        self.handle = self._ffi.gc(raw, self._lib.veil_scalars_free)
        self.size = size

    def add_products(self, first: int, stride: int, low_bits: int, vector: ProductVector) -> None:
        _check_layout(self.size, first, stride, low_bits, len(vector.factors))
        status = self._lib.veil_scalars_add_products(
            self.handle,
            first,
            stride,
            low_bits,
            _scalar_bytes([vector.seed]),
            _scalar_bytes(vector.factors),
            len(vector.factors),
        )
        _raise_for(status, self._lib)

    def add_constant(self, first: int, count: int, value: int) -> None:
        if first < 0 or count < 0 or first + count > self.size:
            raise ValueError(f"slots {first}..{first + count} are outside a vector of {self.size}")
        _raise_for(
            self._lib.veil_scalars_add_constant(self.handle, first, count, _scalar_bytes([value])),
            self._lib,
        )

    def encoded(self) -> Any:
        out = self._ffi.new("uint8_t[]", 32 * self.size or 1)
        self._lib.veil_scalars_encode(self.handle, out)
        return out

    def to_ints(self) -> list[int]:
        data = bytes(self._ffi.buffer(self.encoded(), 32 * self.size))
        return [int.from_bytes(data[k : k + 32], "little") for k in range(0, len(data), 32)]


def _raise_for(status: int, lib: Any) -> None:
    if status == lib.VEIL_MSM_NO_MEMORY:
        raise MemoryError("privacy.msm native: out of memory")
    if status != lib.VEIL_MSM_OK:
        raise ValueError(f"privacy.msm native: refused its arguments (status {status})")


class NativeBackend:
    """Pippenger/Straus in C over libdecaf (``privacy/msm/veil_msm.c``)."""

    name = "native"

    def __init__(self, module: Any) -> None:
        self._module = module
        self._ffi = module.ffi
        self._lib = module.lib

    def scalar_vector(self, size: int) -> ScalarVector:
        return NativeScalarVector(self._module, size)

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
        fixed_scalars: Sequence[int] | ScalarVector,
    ) -> bytes:
        ffi, lib = self._ffi, self._lib
        if isinstance(fixed_scalars, NativeScalarVector):
            fixed_bytes, fixed_count = fixed_scalars.encoded(), fixed_scalars.size
        else:
            ints = fixed_scalars if isinstance(fixed_scalars, Sequence) else fixed_scalars.to_ints()
            fixed_bytes, fixed_count = _scalar_bytes(ints), len(ints)
        table = self._table(fixed) if fixed is not None and fixed_count else ffi.NULL
        out = ffi.new("uint8_t[32]")
        bad = ffi.new("size_t *")
        status = lib.veil_msm(
            out,
            _scalar_bytes(scalars),
            b"".join(points),
            len(points),
            table,
            fixed_bytes,
            fixed_count,
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

    def scalar_vector(self, size: int) -> ScalarVector:
        return PyScalarVector(size)

    def msm(
        self,
        scalars: Sequence[int],
        points: Sequence[bytes],
        fixed: FixedPoints | None,
        fixed_scalars: Sequence[int] | ScalarVector,
    ) -> bytes:
        if not isinstance(fixed_scalars, Sequence):
            fixed_scalars = fixed_scalars.to_ints()
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
    self_test = getattr(module.lib, "veil_msm_self_test", None)
    if self_test is None:
        return (
            None,
            "built from older sources; run `python -m privacy.msm.build` (make install does)",
        )
    if not self_test():
        return None, (
            "this libdecaf's point layout is not the one veil_field.h adds on "
            "(veil_msm_self_test failed)"
        )
    backend = NativeBackend(module)
    # A wrong libdecaf (not ristretto255) would agree on nothing: check the basepoint.
    if backend.msm([1], [group.BASEPOINT], None, ()) != group.BASEPOINT:
        return None, "libdecaf's decaf_255 does not reproduce the ristretto255 basepoint"
    return backend, None
