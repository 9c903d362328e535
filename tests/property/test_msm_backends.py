"""privacy.msm: the native and libsodium backends give the same sums and refuse the same points.

The native backend (Pippenger/Straus in C over libdecaf) replaces one libsodium
multiplication per term, so any disagreement would split validators running
different backends. Sums are compared with the libsodium backend, which is one
``group.mul`` per term, and both are checked against identities that hold in
any group (s·P + (−s)·P = 0, scalars taken mod ℓ).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy import group, msm
from privacy.generators import PEDERSEN_G, PEDERSEN_H, bulletproof_generators
from privacy.group import IDENTITY, ORDER


def _require_native() -> None:
    if "native" not in msm.available_backends():
        reason = f"native msm backend unavailable: {msm.native_unavailable_reason()}"
        if os.environ.get("VEIL_MSM_REQUIRE_NATIVE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _with(name: str, scalars: list[int], points: list[bytes], **fixed: object) -> bytes:
    with msm.use_backend(name):
        return msm.multiscalar_mul(scalars, points, **fixed)  # type: ignore[arg-type]


def _point(i: int) -> bytes:
    return group.hash_to_point(hashlib.sha512(b"msm-test" + i.to_bytes(4, "little")).digest())


POOL = [_point(i) for i in range(6)] + [IDENTITY, PEDERSEN_G, PEDERSEN_H]
SPECIAL_SCALARS = [0, 1, 2, ORDER - 1, ORDER, ORDER + 1, 2**252, 2**255, 2**256 - 1, -1, -ORDER]

scalars_st = st.one_of(
    st.sampled_from(SPECIAL_SCALARS),
    st.integers(min_value=0, max_value=ORDER - 1),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.integers(min_value=0, max_value=2**64),
)
terms_st = st.lists(st.tuples(scalars_st, st.sampled_from(POOL)), max_size=12)


@given(terms=terms_st)
def test_backends_give_the_same_sum(terms: list[tuple[int, bytes]]) -> None:
    _require_native()
    scalars = [s for s, _ in terms]
    points = [p for _, p in terms]
    expected = _with("libsodium", scalars, points)
    assert _with("native", scalars, points) == expected
    # The sum is the sum of single multiplications, scalars taken mod ℓ.
    reference = IDENTITY
    for scalar, point in terms:
        reference = group.add(reference, group.mul(scalar, point))
    assert expected == reference


@given(scalar=scalars_st, point=st.sampled_from(POOL))
def test_s_p_plus_minus_s_p_is_the_identity(scalar: int, point: bytes) -> None:
    _require_native()
    for name in msm.available_backends():
        assert _with(name, [scalar, -scalar], [point, point]) == IDENTITY
        assert _with(name, [scalar, ORDER - scalar % ORDER], [point, point]) == IDENTITY


@pytest.mark.parametrize("count", [0, 1, 2, 3, 17, 64, 300])
def test_backends_agree_across_sizes(count: int) -> None:
    """Small counts take the Straus path in C, larger ones Pippenger; both must match."""
    _require_native()
    scalars = [
        int.from_bytes(hashlib.sha512(b"%d-%d" % (count, i)).digest(), "little")
        for i in range(count)
    ]
    points = [POOL[i % len(POOL)] if i % 5 else _point(100 + i) for i in range(count)]
    assert _with("native", scalars, points) == _with("libsodium", scalars, points)


def test_backends_agree_with_a_fixed_table() -> None:
    _require_native()
    g_vec, h_vec = bulletproof_generators(64, 4)
    fixed = msm.fixed_points((*g_vec, *h_vec, PEDERSEN_G, PEDERSEN_H))
    # Fewer fixed scalars than points (the rest count as zero), some of them zero.
    fixed_scalars = [(i * 7919) ** 5 if i % 3 else 0 for i in range(400)]
    scalars = [ORDER - 5, 3, 0]
    points = [_point(1), _point(2), _point(3)]
    native = _with("native", scalars, points, fixed=fixed, fixed_scalars=fixed_scalars)
    sodium = _with("libsodium", scalars, points, fixed=fixed, fixed_scalars=fixed_scalars)
    assert native == sodium
    assert native == _with("libsodium", scalars + fixed_scalars, points + list(fixed.points[:400]))


def test_the_fixed_table_is_decoded_once_per_backend() -> None:
    _require_native()
    fixed = msm.fixed_points((PEDERSEN_G, PEDERSEN_H))
    assert msm.fixed_points((PEDERSEN_G, PEDERSEN_H)) is fixed
    with msm.use_backend("native"):
        msm.multiscalar_mul([], [], fixed=fixed, fixed_scalars=[1])
        handle = fixed.handles["native"]
        assert msm.multiscalar_mul([], [], fixed=fixed, fixed_scalars=[2, 3]) == group.add(
            group.mul(2, PEDERSEN_G), group.mul(3, PEDERSEN_H)
        )
        assert fixed.handles["native"] is handle


def test_backend_name_follows_use_backend(msm_backend: str) -> None:
    assert msm.backend_name() == msm_backend
    assert msm.available_backends()[-1] == "libsodium"


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="not available"), msm.use_backend("wasm"):
        pass


def test_more_fixed_scalars_than_points_is_refused(msm_backend: str) -> None:
    fixed = msm.fixed_points((PEDERSEN_G,))
    with pytest.raises(ValueError, match="fixed"):
        msm.multiscalar_mul([], [], fixed=fixed, fixed_scalars=[1, 2])
    with pytest.raises(ValueError, match="fixed"):
        msm.multiscalar_mul([], [], fixed_scalars=[1])
    with pytest.raises(ValueError, match="as many"):
        msm.multiscalar_mul([1], [])


# --- accepting and refusing the same encodings ---------------------------------

FIELD_P = 2**255 - 19
VALID = [_point(i) for i in range(4)] + [IDENTITY, PEDERSEN_G, PEDERSEN_H]
ADVERSARIAL = [
    bytes(31) + b"\x80",  # the identity with bit 255 set
    b"\xff" * 32,
    (FIELD_P).to_bytes(32, "little"),  # s = p: non-canonical zero
    (FIELD_P + 2).to_bytes(32, "little"),
    (FIELD_P - 1).to_bytes(32, "little"),  # p − 1 is odd: negative
    (1).to_bytes(32, "little"),  # negative field element
    (2).to_bytes(32, "little"),
    *[point[:31] + bytes([point[31] | 0x80]) for point in VALID],  # bit 255 set
]

encodings_st = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.sampled_from(VALID + ADVERSARIAL),
    # Small changes to valid encodings: most are invalid, some decode to other points.
    st.tuples(st.sampled_from(VALID), st.integers(0, 255), st.integers(0, 255)).map(
        lambda t: (
            t[0][: t[1] // 8] + bytes([t[0][t[1] // 8] ^ (1 << (t[1] % 8))]) + t[0][t[1] // 8 + 1 :]
        )
    ),
    st.integers(0, 2**256 - 1).map(lambda v: v.to_bytes(32, "little")),
)


def _outcome(name: str, scalars: list[int], points: list[bytes]) -> bytes | int:
    """The sum, or the index of the point the backend refused."""
    try:
        return _with(name, scalars, points)
    except msm.InvalidPointError as err:
        return -1 - err.index


@given(encoding=encodings_st, scalar=scalars_st)
def test_backends_refuse_the_same_encodings(encoding: bytes, scalar: int) -> None:
    _require_native()
    valid = group.is_valid_point(encoding)
    for name in ("native", "libsodium"):
        with msm.use_backend(name):
            assert msm.is_valid_point(encoding) == valid, name
    # Whatever the scalar (zero, one, ℓ − 1 included), an invalid point is refused.
    for scalars in ([scalar], [0], [1], [ORDER - 1], [scalar, -scalar]):
        points = [encoding] * len(scalars)
        native = _outcome("native", scalars, points)
        assert native == _outcome("libsodium", scalars, points)
        assert (native == -1) == (not valid)


@pytest.mark.parametrize("encoding", ADVERSARIAL, ids=lambda e: e.hex()[:8] + ".." + e.hex()[-4:])
def test_adversarial_encodings_are_refused_by_both(encoding: bytes) -> None:
    _require_native()
    for name in ("native", "libsodium"):
        with msm.use_backend(name):
            assert not msm.is_valid_point(encoding)
        assert _outcome(name, [5, 0, 7], [PEDERSEN_G, encoding, PEDERSEN_H]) == -2


def test_a_fixed_table_with_an_invalid_point_is_refused(msm_backend: str) -> None:
    with pytest.raises(msm.InvalidPointError) as err:
        msm.fixed_points((PEDERSEN_G, bytes(31) + b"\x80"))
    assert err.value.index == 1


@pytest.mark.parametrize("bad", [b"\x00" * 31, b"\x00" * 33, "00" * 32, None])
def test_a_point_that_is_not_32_bytes_is_refused(msm_backend: str, bad: object) -> None:
    with pytest.raises(msm.InvalidPointError) as err:
        msm.multiscalar_mul([1, 1], [PEDERSEN_G, bad])  # type: ignore[list-item]
    assert err.value.index == 1
    assert err.value.reason == "INVALID_POINT"


# --- scalar vectors (a batch's generator scalars) ------------------------------


def _direct_products(vector: msm.ProductVector) -> list[int]:
    out = []
    for i in range(1 << len(vector.factors)):
        value = vector.seed
        for r, factor in enumerate(vector.factors):
            if i >> r & 1:
                value = value * factor % ORDER
        out.append(value % ORDER)
    return out


layouts_st = st.tuples(
    st.integers(0, 5),  # rounds
    st.integers(0, 5),  # low_bits (clipped to rounds)
    st.integers(0, 6),  # extra stride
    st.integers(0, 9),  # first slot
)


@given(
    steps=st.lists(
        st.tuples(layouts_st, scalars_st, st.lists(scalars_st, min_size=5, max_size=5), scalars_st),
        max_size=6,
    )
)
def test_scalar_vectors_sum_the_same_products(
    steps: list[tuple[tuple[int, int, int, int], int, list[int], int]],
) -> None:
    _require_native()
    size = 9 + 6 * 32 + 32
    expected = [0] * size
    vectors = {}
    for name in ("native", "libsodium"):
        with msm.use_backend(name):
            vectors[name] = msm.scalar_vector(size)
    for (rounds, low_drawn, extra, first), seed, factors, constant in steps:
        low_bits = min(low_drawn, rounds)
        stride = (1 << low_bits) + extra
        vector = msm.ProductVector(seed, tuple(factors[:rounds]))
        for i, value in enumerate(_direct_products(vector)):
            expected[first + (i >> low_bits) * stride + i % (1 << low_bits)] += value
        for slot in range(first, first + 3):
            expected[slot] += constant
        for scalar_vector in vectors.values():
            scalar_vector.add_products(first, stride, low_bits, vector)
            scalar_vector.add_constant(first, 3, constant)
    reduced = [value % ORDER for value in expected]
    assert vectors["native"].to_ints() == reduced
    assert vectors["libsodium"].to_ints() == reduced


def test_a_scalar_vector_refuses_slots_outside_it(msm_backend: str) -> None:
    vector = msm.scalar_vector(8)
    three_rounds = msm.ProductVector(5, (2, 3, 4))
    vector.add_products(0, 8, 3, three_rounds)  # exactly fits
    for first, stride, low_bits in ((1, 8, 3), (0, 5, 2), (0, 1, 1), (0, 8, 4)):
        with pytest.raises(ValueError, match="do not fit"):
            vector.add_products(first, stride, low_bits, three_rounds)
    with pytest.raises(ValueError, match="outside"):
        vector.add_constant(6, 3, 1)
    assert vector.to_ints() == [5, 10, 15, 30, 20, 40, 60, 120]


def test_a_scalar_vector_is_a_fixed_scalar_argument(msm_backend: str) -> None:
    fixed = msm.fixed_points((PEDERSEN_G, PEDERSEN_H, _point(7)))
    vector = msm.scalar_vector(3)
    vector.add_products(0, 2, 1, msm.ProductVector(3, (5,)))  # slots 0, 1: 3, 15
    vector.add_constant(2, 1, ORDER - 1)
    got = msm.multiscalar_mul([2], [_point(8)], fixed=fixed, fixed_scalars=vector)
    assert got == msm.multiscalar_mul(
        [2, 3, 15, -1], [_point(8), PEDERSEN_G, PEDERSEN_H, _point(7)]
    )


def test_proving_never_uses_the_variable_time_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/privacy.md's constant-time argument: secret scalars stay on libsodium."""
    from privacy import sigma
    from privacy.pedersen import commit
    from privacy.rangeproof import RangeStatement, prove_range, verify_range

    def refuse(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("a prover called privacy.msm")

    def refuse_vector(*_args: object, **_kwargs: object) -> msm.ScalarVector:
        raise AssertionError("a prover called privacy.msm")

    monkeypatch.setattr(msm, "multiscalar_mul", refuse)
    monkeypatch.setattr(msm, "scalar_vector", refuse_vector)
    proof, commitments = prove_range([5, 6], [11, 12], 64)
    excess_proof = sigma.prove_excess(7, b"m")
    zero_proof = sigma.prove_commitment_to_zero(9, commit(0, 9), b"m")
    equal_proof = sigma.prove_equal_commitments(3, 4, commit(8, 3), commit(8, 4), b"m")
    monkeypatch.undo()
    verify_range(RangeStatement(commitments, proof, 64))
    assert sigma.verify_excess(group.mul(7, PEDERSEN_H), b"m", excess_proof)
    assert sigma.verify_commitment_to_zero(commit(0, 9), b"m", zero_proof)
    assert sigma.verify_equal_commitments(commit(8, 3), commit(8, 4), b"m", equal_proof)


@pytest.mark.parametrize("variable", [0, 1, 30, 700])
def test_fixed_terms_agree_alone_or_among_many_variable_ones(variable: int) -> None:
    """Few variable terms: the native backend adds fixed terms through their window
    powers; many: in one Pippenger pass with the rest. Both must give the same sum,
    for top-heavy scalars too (2^256 − 1 carries out of the last window)."""
    _require_native()
    g_vec, h_vec = bulletproof_generators(64, 2)
    fixed = msm.fixed_points((*g_vec, *h_vec))
    special = [2**256 - 1, ORDER - 1, 1, 2**255, 2**252 + 1, 0]
    fixed_scalars = special + [(i * 104729) ** 7 for i in range(len(fixed.points) - len(special))]
    scalars = [(i + 3) ** 40 for i in range(variable)]
    points = [_point(200 + i % 50) for i in range(variable)]
    native = _with("native", scalars, points, fixed=fixed, fixed_scalars=fixed_scalars)
    assert native == _with("libsodium", scalars, points, fixed=fixed, fixed_scalars=fixed_scalars)


def _native() -> Any:
    _require_native()
    return importlib.import_module("privacy.msm._native")


def _window_plan(count: int, bits: int) -> tuple[int, int]:
    """(window bits, windows) the native Pippenger takes for ``count`` terms of ``bits`` bits."""
    native = _native()
    windows = native.ffi.new("int *")
    window_bits = native.lib.veil_msm_window_plan(count, bits, windows)
    return window_bits, windows[0]


def test_the_bucket_phase_arithmetic_agrees_with_libdecaf() -> None:
    """Pippenger's buckets add with veil_field.h's own field arithmetic on libdecaf's
    point layout; the self-test compares it with libdecaf's addition."""
    assert _native().lib.veil_msm_self_test() == 1


@pytest.mark.parametrize(("count", "bits"), [(278, 253), (2818, 253), (300, 64), (40, 253)])
def test_pippenger_needs_no_spare_window_for_the_last_carry(count: int, bits: int) -> None:
    """Digits in [−2^(c−1), 2^(c−1)] carry only above 2^(c−1), so ⌊bits/c⌋ + 1 windows
    hold any scalar; the earlier rule, ⌈bits/c⌉ + 1, spent a window of n additions
    on a carry that cannot happen (44 instead of 43 at n = 278, c = 6)."""
    window_bits, windows = _window_plan(count, bits)
    assert 2 <= window_bits <= 16
    assert windows == bits // window_bits + 1


def _edge_scalars() -> list[int]:
    """For every window c: all digits at 2^(c−1) (the value that does not carry), one
    above (every window carries), and all-ones scalars of c·k − 1, c·k and c·k + 1 bits
    near the top (where the last window absorbs or passes on a carry)."""
    out = []
    for c in range(2, 13):
        half = 1 << (c - 1)
        out.append(sum(half << (c * w) for w in range(252 // c)))
        out.append(sum((half + 1) << (c * w) for w in range(252 // c)))
        for k in range(252 // c - 1, 253 // c + 2):
            for length in (c * k - 1, c * k, c * k + 1):
                if 0 < length <= 252:
                    out.append((1 << length) - 1)
    return [*out, ORDER - 1, ORDER // 2, ORDER // 3]


@pytest.mark.parametrize("count", [20, 90, 278, 700, 2818])
def test_backends_agree_on_digits_at_the_window_edges(count: int) -> None:
    """Every size picks its own window (Straus below ~30 terms); the edge scalars of
    every window width are cycled over the terms, so each size meets its own edges."""
    _require_native()
    edges = _edge_scalars()
    scalars = [edges[i % len(edges)] * (1 if i % 3 else -1) for i in range(count)]
    points = [_point(300 + i % 97) if i % 4 else POOL[i % len(POOL)] for i in range(count)]
    assert _with("native", scalars, points) == _with("libsodium", scalars, points)


@pytest.mark.parametrize("count", [20, 90, 278, 2818])
def test_the_top_window_absorbs_the_last_carry(count: int) -> None:
    """The largest scalar sets the window count; when its length is c·k − 1 its top
    window reads up to 2^(c−1) − 1 and may receive a carry: the digit 2^(c−1), which
    must not carry again (there is no window above it)."""
    length = next(
        bits
        for bits in range(252, 100, -1)
        if bits % _window_plan(count, bits)[0] == _window_plan(count, bits)[0] - 1
    )
    top = (1 << length) - 1
    scalars = [top - (i % 3) * (1 << (length - 2)) for i in range(count)]
    points = [_point(400 + i % 61) for i in range(count)]
    assert _with("native", scalars, points) == _with("libsodium", scalars, points)


def test_a_stale_or_mismatched_native_build_is_refused_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The module must not be used when it predates the self-test (built from older
    sources) or when the self-test fails (another libdecaf layout)."""
    from privacy.msm import backends

    class Lib:
        pass

    class Module:
        lib = Lib()
        ffi = None

    monkeypatch.setattr(importlib, "import_module", lambda name: Module)
    backend, reason = backends.load_native()
    assert backend is None and reason is not None and "older sources" in reason
    Lib.veil_msm_self_test = staticmethod(lambda: 0)  # type: ignore[attr-defined]
    backend, reason = backends.load_native()
    assert backend is None and reason is not None and "veil_msm_self_test failed" in reason


@given(seed=st.binary(min_size=32, max_size=32), factor=st.binary(min_size=32, max_size=32))
def test_native_scalar_vectors_reduce_any_32_bytes(seed: bytes, factor: bytes) -> None:
    """veil_scalars.c keeps Montgomery-form values mod ℓ; its C interface takes any
    32-byte value (2^256 − 1 included), reduced on the way in."""
    native = _native()
    lib, ffi = native.lib, native.ffi
    vector = ffi.gc(lib.veil_scalars_new(3), lib.veil_scalars_free)
    assert lib.veil_scalars_add_products(vector, 0, 2, 1, seed, factor, 1) == lib.VEIL_MSM_OK
    assert lib.veil_scalars_add_constant(vector, 1, 2, b"\xff" * 32) == lib.VEIL_MSM_OK
    out = ffi.new("uint8_t[]", 96)
    lib.veil_scalars_encode(vector, out)
    got = [int.from_bytes(bytes(out[k : k + 32]), "little") for k in (0, 32, 64)]
    s, f, big = int.from_bytes(seed, "little"), int.from_bytes(factor, "little"), 2**256 - 1
    assert got == [s % ORDER, (s * f + big) % ORDER, big % ORDER]
