"""Ristretto255 group layer against RFC 9496 vectors and its own edge cases."""

from __future__ import annotations

import pytest

from privacy import group as g

# RFC 9496 appendix A.1: encodings of multiples 0..4 of the generator.
MULTIPLES = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
    "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
    "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
    "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
]
# RFC 9496 appendix A.2: invalid encodings (non-canonical, negative, non-square...).
INVALID = [
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
]


@pytest.mark.parametrize("k", range(5))
def test_basepoint_multiples_match_rfc9496(k: int) -> None:
    assert g.mul_base(k).hex() == MULTIPLES[k]
    assert g.mul(k, g.BASEPOINT).hex() == MULTIPLES[k]
    assert g.multiscalar_mul([k], [g.BASEPOINT]).hex() == MULTIPLES[k]


@pytest.mark.parametrize("encoding", INVALID)
def test_invalid_encodings_refused(encoding: str) -> None:
    with pytest.raises(g.GroupError) as err:
        g.point_from_bytes(bytes.fromhex(encoding))
    assert err.value.reason == "INVALID_POINT"


def test_identity_is_valid_but_can_be_refused() -> None:
    assert g.point_from_bytes(g.IDENTITY) == g.IDENTITY
    with pytest.raises(g.GroupError) as err:
        g.point_from_bytes(g.IDENTITY, allow_identity=False)
    assert err.value.reason == "IDENTITY_POINT"


def test_zero_result_is_identity_not_an_error() -> None:
    assert g.mul(g.ORDER, g.BASEPOINT) == g.IDENTITY
    assert g.mul(0, g.BASEPOINT) == g.IDENTITY
    assert g.sub(g.BASEPOINT, g.BASEPOINT) == g.IDENTITY


def test_scalar_canonicity() -> None:
    assert g.scalar_from_bytes(g.scalar_to_bytes(g.ORDER - 1)) == g.ORDER - 1
    with pytest.raises(g.GroupError) as err:
        g.scalar_from_bytes(g.ORDER.to_bytes(32, "little"))
    assert err.value.reason == "NON_CANONICAL_SCALAR"
    with pytest.raises(g.GroupError):
        g.scalar_from_bytes(b"\x00" * 31)


def test_group_laws_and_multiscalar() -> None:
    a, b = g.random_scalar(), g.random_scalar()
    p, q = g.mul_base(a), g.mul_base(b)
    assert g.add(p, q) == g.mul_base(a + b)
    assert g.add(p, g.neg(p)) == g.IDENTITY
    assert g.multiscalar_mul([a, 1, g.ORDER - 1, 0], [q, p, p, q]) == g.mul_base(a * b)
    assert g.mul(g.scalar_inverse(a), p) == g.BASEPOINT


def test_all_valid_points_agrees_with_is_valid_point() -> None:
    good = [bytes.fromhex(h) for h in MULTIPLES]
    assert g.all_valid_points(good)
    assert g.all_valid_points([])
    for encoding in INVALID:
        bad = bytes.fromhex(encoding)
        assert not g.all_valid_points([*good, bad])
        assert not g.all_valid_points([bad, *good])
    assert not g.all_valid_points([good[1][:31]])
    assert not g.all_valid_points([bytearray(good[1])])  # type: ignore[list-item]


@pytest.mark.parametrize("encoding", INVALID)
def test_mul_refuses_an_invalid_encoding_like_is_valid_point(encoding: str) -> None:
    # Batch verification relies on this: libsodium's multiplication decodes its
    # point exactly as is_valid_point does.
    for scalar in (2, g.random_scalar(), g.ORDER - 2):
        with pytest.raises(g.GroupError) as err:
            g.mul(scalar, bytes.fromhex(encoding))
        assert err.value.reason == "INVALID_POINT"
