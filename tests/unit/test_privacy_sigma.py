"""Sigma proofs on base H: completeness, tamper resistance, binding and strict parsing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import group, sigma
from privacy.generators import PEDERSEN_H
from privacy.pedersen import commit

# Verification runs once per multiscalar backend (tests/conftest.py): both must agree.
pytestmark = pytest.mark.usefixtures("msm_backend")

MESSAGE = b"veil/tx/transfer/v1 digest 0123456789"


def h_mul(x: int) -> bytes:
    return group.mul(x, PEDERSEN_H)


# Each kind as (prove() -> proof, verify(proof, message) -> bool), over one fixed statement.
Kind = tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], bool]]


def make_kinds() -> dict[str, Kind]:
    x = group.random_scalar()
    excess = h_mul(x)
    r1, r2 = group.random_scalar(), group.random_scalar()
    c1, c2 = commit(1234, r1), commit(1234, r2)
    rz = group.random_scalar()
    cz = commit(0, rz)
    return {
        "excess": (
            lambda m: sigma.prove_excess(x, m),
            lambda p, m: sigma.verify_excess(excess, m, p),
        ),
        "equal": (
            lambda m: sigma.prove_equal_commitments(r1, r2, c1, c2, m),
            lambda p, m: sigma.verify_equal_commitments(c1, c2, m, p),
        ),
        "zero": (
            lambda m: sigma.prove_commitment_to_zero(rz, cz, m),
            lambda p, m: sigma.verify_commitment_to_zero(cz, m, p),
        ),
    }


KINDS = ["excess", "equal", "zero"]


@pytest.mark.parametrize("kind", KINDS)
def test_valid_proof_verifies_and_is_64_bytes(kind: str) -> None:
    prove, verify = make_kinds()[kind]
    proof = prove(MESSAGE)
    assert len(proof) == sigma.PROOF_BYTES == 64
    assert verify(proof, MESSAGE)
    assert verify(prove(b""), b"")


@pytest.mark.parametrize("kind", KINDS)
def test_every_byte_and_bit_position_tampered_fails(kind: str) -> None:
    prove, verify = make_kinds()[kind]
    proof = prove(MESSAGE)
    for index in range(len(proof)):
        for bit in (0, 3, 7):
            tampered = bytearray(proof)
            tampered[index] ^= 1 << bit
            assert not verify(bytes(tampered), MESSAGE), (index, bit)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_message_fails(kind: str) -> None:
    prove, verify = make_kinds()[kind]
    proof = prove(MESSAGE)
    assert not verify(proof, MESSAGE + b"\x00")
    assert not verify(proof, MESSAGE[:-1])
    assert not verify(proof, b"")


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_lengths_and_types_return_false(kind: str) -> None:
    prove, verify = make_kinds()[kind]
    proof = prove(MESSAGE)
    for bad in (b"", proof[:63], proof + b"\x00", proof * 2, proof[:32]):
        assert not verify(bad, MESSAGE)
    assert not verify(bytearray(proof), MESSAGE)  # type: ignore[arg-type]
    assert not verify(proof.hex(), MESSAGE)  # type: ignore[arg-type]
    assert not verify(proof, MESSAGE.decode())  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_non_canonical_s_is_refused(kind: str) -> None:
    """s + ℓ would pass the group equation (same point), so only the range check stops it."""
    prove, verify = make_kinds()[kind]
    proof = prove(MESSAGE)
    s = int.from_bytes(proof[32:], "little")
    malleated = proof[:32] + (s + group.ORDER).to_bytes(32, "little")
    assert not verify(malleated, MESSAGE)


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_or_identity_nonce_point_is_refused(kind: str) -> None:
    prove, verify = make_kinds()[kind]
    proof = prove(MESSAGE)
    assert not verify(bytes(32) + proof[32:], MESSAGE)
    assert not verify(b"\xff" * 32 + proof[32:], MESSAGE)


def test_cross_kind_proofs_never_verify() -> None:
    """One secret w with P = w·H is a valid statement for all three kinds; tags keep them apart."""
    w = group.random_scalar()
    p_point = h_mul(w)
    proofs = {
        "excess": sigma.prove_excess(w, MESSAGE),
        "zero": sigma.prove_commitment_to_zero(w, p_point, MESSAGE),
        "equal": sigma.prove_equal_commitments(w, 0, p_point, group.IDENTITY, MESSAGE),
    }
    verifiers: dict[str, Callable[[bytes], bool]] = {
        "excess": lambda p: sigma.verify_excess(p_point, MESSAGE, p),
        "zero": lambda p: sigma.verify_commitment_to_zero(p_point, MESSAGE, p),
        "equal": lambda p: sigma.verify_equal_commitments(p_point, group.IDENTITY, MESSAGE, p),
    }
    for made, proof in proofs.items():
        for checked, verify in verifiers.items():
            assert verify(proof) == (made == checked), (made, checked)


def test_excess_wrong_point_fails() -> None:
    x = group.random_scalar()
    proof = sigma.prove_excess(x, MESSAGE)
    assert sigma.verify_excess(h_mul(x), MESSAGE, proof)
    assert not sigma.verify_excess(h_mul(x + 1), MESSAGE, proof)
    assert not sigma.verify_excess(group.mul_base(x), MESSAGE, proof)
    assert not sigma.verify_excess(group.neg(h_mul(x)), MESSAGE, proof)


def test_excess_with_a_g_component_cannot_be_proven() -> None:
    """The ledger's use: Σin − Σout = x·H only when values balance; 1·G + x·H has no proof."""
    x = group.random_scalar()
    unbalanced = commit(1, x)
    with pytest.raises(ValueError, match="witness"):
        sigma._prove(sigma.EXCESS_TAG, x, unbalanced, (unbalanced,), MESSAGE)
    forged = sigma.prove_excess(x, MESSAGE)
    assert not sigma.verify_excess(unbalanced, MESSAGE, forged)


def test_identity_excess_is_refused() -> None:
    with pytest.raises(ValueError):
        sigma.prove_excess(0, MESSAGE)
    with pytest.raises(ValueError):
        sigma.prove_excess(group.ORDER, MESSAGE)
    # Anyone can make s·H − c·0 == R for the identity, so the verifier refuses it outright.
    k = group.random_scalar()
    r_point = h_mul(k)
    forged = r_point + group.scalar_to_bytes(k)
    assert not sigma.verify_excess(group.IDENTITY, MESSAGE, forged)


def test_invalid_statement_points_return_false() -> None:
    x = group.random_scalar()
    proof = sigma.prove_excess(x, MESSAGE)
    for bad in (b"\xff" * 32, h_mul(x)[:31], b"", "00" * 32):
        assert not sigma.verify_excess(bad, MESSAGE, proof)  # type: ignore[arg-type]
        assert not sigma.verify_commitment_to_zero(bad, MESSAGE, proof)  # type: ignore[arg-type]
        assert not sigma.verify_equal_commitments(bad, h_mul(x), MESSAGE, proof)  # type: ignore[arg-type]
        assert not sigma.verify_equal_commitments(h_mul(x), bad, MESSAGE, proof)  # type: ignore[arg-type]


def test_equal_commitments_binds_both_commitments_and_their_order() -> None:
    r1, r2 = group.random_scalar(), group.random_scalar()
    c1, c2 = commit(77, r1), commit(77, r2)
    proof = sigma.prove_equal_commitments(r1, r2, c1, c2, MESSAGE)
    assert sigma.verify_equal_commitments(c1, c2, MESSAGE, proof)
    assert not sigma.verify_equal_commitments(c2, c1, MESSAGE, proof)
    # Same difference, other commitments: still refused, the statement is (C1, C2), not C1 − C2.
    shift = commit(5, group.random_scalar())
    assert group.sub(group.add(c1, shift), group.add(c2, shift)) == group.sub(c1, c2)
    assert not sigma.verify_equal_commitments(
        group.add(c1, shift), group.add(c2, shift), MESSAGE, proof
    )
    other = commit(78, r2)
    assert not sigma.verify_equal_commitments(c1, other, MESSAGE, proof)


def test_equal_commitments_to_different_values_cannot_be_proven() -> None:
    r1, r2 = group.random_scalar(), group.random_scalar()
    with pytest.raises(ValueError, match="witness"):
        sigma.prove_equal_commitments(r1, r2, commit(10, r1), commit(11, r2), MESSAGE)
    with pytest.raises(ValueError, match="witness"):
        sigma.prove_equal_commitments(r1, r2 + 1, commit(10, r1), commit(10, r2), MESSAGE)
    with pytest.raises(ValueError):
        sigma.prove_equal_commitments(r1, r2, b"\xff" * 32, commit(10, r2), MESSAGE)


def test_equal_commitments_same_point_is_a_true_statement() -> None:
    r = group.random_scalar()
    c = commit(9, r)
    proof = sigma.prove_equal_commitments(r, r, c, c, MESSAGE)
    assert sigma.verify_equal_commitments(c, c, MESSAGE, proof)


def test_commitment_to_nonzero_value_cannot_be_proven_zero() -> None:
    r = group.random_scalar()
    with pytest.raises(ValueError, match="witness"):
        sigma.prove_commitment_to_zero(r, commit(1, r), MESSAGE)
    proof = sigma.prove_commitment_to_zero(r, commit(0, r), MESSAGE)
    assert not sigma.verify_commitment_to_zero(commit(1, r), MESSAGE, proof)
    with pytest.raises(ValueError):
        sigma.prove_commitment_to_zero(r, b"\xff" * 32, MESSAGE)


def test_nonces_are_fresh_for_the_same_statement_and_message() -> None:
    x = group.random_scalar()
    proofs = {sigma.prove_excess(x, MESSAGE) for _ in range(8)}
    assert len(proofs) == 8
    assert len({p[:32] for p in proofs}) == 8


def test_a_stuck_rng_still_gives_distinct_nonces_for_distinct_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/privacy.md, hedged nonces: with a constant RNG the nonce still hashes the message."""
    x = group.random_scalar()
    monkeypatch.setattr(sigma.secrets, "token_bytes", bytes)  # all-zero bytes
    first, second = sigma.prove_excess(x, MESSAGE), sigma.prove_excess(x, MESSAGE + b"!")
    assert first[:32] != second[:32]  # R differs: no nonce reuse that would reveal x
    assert sigma.verify_excess(h_mul(x), MESSAGE, first)
    assert sigma.verify_excess(h_mul(x), MESSAGE + b"!", second)
    assert sigma.prove_excess(x, MESSAGE) == first  # the RNG really was stuck


def test_prover_refuses_non_bytes_message() -> None:
    with pytest.raises(TypeError):
        sigma.prove_excess(group.random_scalar(), "text")  # type: ignore[arg-type]


@settings(max_examples=25)
@given(
    value=st.integers(min_value=0, max_value=2**64 - 1),
    r1=st.integers(min_value=1, max_value=group.ORDER - 1),
    r2=st.integers(min_value=0, max_value=group.ORDER - 1),
    message=st.binary(max_size=64),
)
def test_completeness_random_statements(value: int, r1: int, r2: int, message: bytes) -> None:
    c1, c2 = commit(value, r1), commit(value, r2)
    assert sigma.verify_equal_commitments(
        c1, c2, message, sigma.prove_equal_commitments(r1, r2, c1, c2, message)
    )
    assert sigma.verify_excess(h_mul(r1), message, sigma.prove_excess(r1, message))
    zero = commit(0, r2)
    assert sigma.verify_commitment_to_zero(
        zero, message, sigma.prove_commitment_to_zero(r2, zero, message)
    )


@settings(max_examples=200)
@given(proof=st.binary(max_size=80), point=st.binary(min_size=32, max_size=32))
def test_random_bytes_never_verify_and_never_raise(proof: bytes, point: bytes) -> None:
    excess = h_mul(7)
    for candidate in (excess, point):
        assert not sigma.verify_excess(candidate, MESSAGE, proof)
        assert not sigma.verify_commitment_to_zero(candidate, MESSAGE, proof)
        assert not sigma.verify_equal_commitments(candidate, excess, MESSAGE, proof)
