"""Hypothesis: no verifier of ``privacy`` raises anything but its documented refusal on
hostile input (issue 8 §2.1: "never let a group error escape a verifier").

Inputs are valid proofs and statements mutated the way a peer can: flipped
bytes, a 32-byte chunk replaced by a special encoding (bit 255 set, ``00…80``,
the identity, RFC 9496 invalid encodings, scalars ≥ ℓ), truncation and
extension, random bytes, and ill-typed statement fields.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import group as g
from privacy import sigma
from privacy.generators import PEDERSEN_H
from privacy.memo import MemoError, Opening, generate_memo_keypair, open_memo, seal_memo
from privacy.pedersen import commit
from privacy.rangeproof import RangeProofError, RangeStatement, batch_verify, prove_range
from privacy.rangeproof import verify_range as verify_range_statement

# Verification runs once per multiscalar backend (tests/conftest.py): both must agree.
pytestmark = pytest.mark.usefixtures("msm_backend")

SPECIAL_CHUNKS = [
    bytes(31) + b"\x80",  # 00…80: the identity with bit 255 set
    g.IDENTITY,
    g.BASEPOINT[:31] + bytes([g.BASEPOINT[31] | 0x80]),
    bytes.fromhex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    g.ORDER.to_bytes(32, "little"),  # a scalar = ℓ
    b"\xff" * 32,
]


def _proofs() -> list[RangeStatement]:
    out = []
    for bits, values, kind in ((8, [7], "default"), (8, [1, 254], "merlin"), (16, [9], "default")):
        proof, commitments = prove_range(
            values, [g.random_scalar() for _ in values], bits, transcript=kind
        )
        out.append(RangeStatement(commitments, proof, bits, kind))
    return out


VALID = _proofs()


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    kind = draw(st.sampled_from(["flip", "chunk", "truncate", "extend", "random", "bit255"]))
    if kind == "flip" and data:
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "chunk" and len(data) >= 32:
        k = draw(st.integers(0, len(data) // 32 - 1))
        data[32 * k : 32 * k + 32] = draw(st.sampled_from(SPECIAL_CHUNKS))
    elif kind == "truncate":
        del data[draw(st.integers(0, len(data))) :]
    elif kind == "extend":
        data += draw(st.binary(min_size=1, max_size=64))
    elif kind == "random":
        return draw(st.binary(min_size=len(data), max_size=len(data)))
    elif kind == "bit255" and len(data) >= 32:
        k = draw(st.integers(0, len(data) // 32 - 1))
        data[32 * k + 31] |= 0x80
    return bytes(data)


ODD_VALUES = st.sampled_from([None, 8.0, "8", -1, 0, 2**70, True, b"x", (8,), 7])


@st.composite
def hostile_statements(draw: st.DrawFn) -> RangeStatement:
    good = draw(st.sampled_from(VALID))
    target = draw(st.sampled_from(["proof", "commitment", "field", "both"]))
    statement = good
    if target in ("proof", "both"):
        statement = dataclasses.replace(statement, proof=draw(mutated_bytes(good.proof)))
    if target in ("commitment", "both"):
        commitments = list(good.commitments)
        j = draw(st.integers(0, len(commitments) - 1))
        commitments[j] = draw(
            st.one_of(mutated_bytes(commitments[j]), st.sampled_from(SPECIAL_CHUNKS))
        )
        statement = dataclasses.replace(statement, commitments=tuple(commitments))
    if target == "field":
        field = draw(st.sampled_from(["bits", "transcript", "label", "commitments", "proof"]))
        odd = draw(
            st.one_of(ODD_VALUES, st.text(max_size=8), st.lists(st.binary(max_size=33), max_size=3))
        )
        statement = dataclasses.replace(statement, **{field: odd})  # type: ignore[arg-type]
    return statement


def _verify(statement: RangeStatement) -> str | None:
    try:
        verify_range_statement(statement)
    except RangeProofError as err:
        return err.reason
    return None


@settings(max_examples=150)
@given(hostile_statements())
def test_verify_range_only_refuses_with_a_reason(statement: RangeStatement) -> None:
    assert _verify(statement) in ("MALFORMED", "INVALID", "UNSUPPORTED", None)


@settings(max_examples=40)
@given(st.lists(hostile_statements(), min_size=1, max_size=5), st.integers(0, 5))
def test_batch_verify_reports_indices_and_agrees_with_verify_range(
    hostile: list[RangeStatement], slot: int
) -> None:
    batch = list(hostile)
    batch.insert(min(slot, len(batch)), VALID[0])
    bad = batch_verify(batch)
    expected = [i for i, s in enumerate(batch) if _verify(s) is not None]
    assert bad == expected
    assert batch_verify(batch, first_failure_only=True) == expected[:1]


MESSAGES = st.one_of(st.binary(max_size=16), ODD_VALUES, st.text(max_size=4))


@st.composite
def sigma_cases(draw: st.DrawFn) -> tuple[str, tuple[object, ...]]:
    x = draw(st.integers(1, g.ORDER - 1))
    excess = g.mul(x, PEDERSEN_H)
    proof = sigma.prove_excess(x, b"m")
    c1, c2 = commit(5, 11), commit(5, 13)
    kind = draw(st.sampled_from(["excess", "equal", "zero"]))
    # Special encodings and the intact proof first: a bad statement point only reaches the
    # multiplication when the proof itself parses.
    point = st.one_of(
        st.sampled_from(SPECIAL_CHUNKS), mutated_bytes(excess), st.just(excess), ODD_VALUES
    )
    proofs = st.one_of(st.just(proof), mutated_bytes(proof), st.binary(max_size=70), ODD_VALUES)
    message = draw(st.one_of(st.just(b"m"), MESSAGES))
    if kind == "excess":
        return kind, (draw(point), message, draw(proofs))
    if kind == "equal":
        return kind, (
            draw(st.one_of(point, st.just(c1))),
            draw(st.one_of(point, st.just(c2))),
            message,
            draw(proofs),
        )
    return kind, (draw(point), message, draw(proofs))


VERIFIERS = {
    "excess": sigma.verify_excess,
    "equal": sigma.verify_equal_commitments,
    "zero": sigma.verify_commitment_to_zero,
}


@settings(max_examples=200)
@given(sigma_cases())
def test_sigma_verifiers_return_a_bool_and_never_raise(
    case: tuple[str, tuple[object, ...]],
) -> None:
    kind, args = case
    result = VERIFIERS[kind](*args)  # type: ignore[operator]
    assert result is True or result is False


PRIVATE, PUBLIC = generate_memo_keypair()
OPENING = Opening(42, 7, bytes(32), b"note")
MEMO = seal_memo(OPENING, PUBLIC)


@settings(max_examples=100)
@given(
    st.one_of(mutated_bytes(MEMO), st.binary(max_size=400), ODD_VALUES),
    st.one_of(
        st.just(OPENING.commitment()),
        mutated_bytes(OPENING.commitment()),
        st.sampled_from(SPECIAL_CHUNKS),
        ODD_VALUES,
    ),
)
def test_open_memo_raises_only_memo_errors(memo: object, commitment: object) -> None:
    try:
        opening = open_memo(memo, PRIVATE, commitment)  # type: ignore[arg-type]
    except MemoError as err:
        assert err.reason in ("UNDECRYPTABLE", "MALFORMED", "OPENING_MISMATCH")
        return
    assert opening == OPENING and commitment == OPENING.commitment()


def test_the_fuzzed_verifiers_accept_their_unmutated_inputs() -> None:
    """Controls: the mutations start from inputs that verify."""
    for statement in VALID:
        assert _verify(statement) is None
    assert open_memo(MEMO, PRIVATE, OPENING.commitment()) == OPENING
    x = 5
    assert sigma.verify_excess(g.mul(x, PEDERSEN_H), b"m", sigma.prove_excess(x, b"m"))
    with pytest.raises(MemoError):
        open_memo(MEMO, PRIVATE, SPECIAL_CHUNKS[2])
