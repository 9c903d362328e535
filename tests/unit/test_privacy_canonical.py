"""Canonical point encodings (issue 8 §2.1): bit 255 is refused on every path, and no
group error escapes a verifier.

The libsodium bundled by rbcl ignores bit 255 when it decodes a Ristretto point,
so ``P`` with bit 255 set used to be accepted as ``P``, and ``00…80`` (the
identity with bit 255 set) made libsodium's multiplication fail with a
``GroupError`` that escaped ``verify_range``, ``batch_verify`` and the sigma
verifiers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from privacy import group as g
from privacy import rangeproof as rp
from privacy import sigma
from privacy.generators import PEDERSEN_H
from privacy.pedersen import commit
from privacy.rangeproof import RangeProofError, RangeStatement, batch_verify, verify_range

# Verification runs once per multiscalar backend (tests/conftest.py): both must agree.
pytestmark = pytest.mark.usefixtures("msm_backend")

# RFC 9496 appendix A.1: encodings of the multiples 0..4 of the generator.
MULTIPLES = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
    "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
    "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
    "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
]

# RFC 9496 appendix A.2, every invalid encoding, by the check that refuses it.
RFC9496_INVALID = [
    # non-canonical field encodings
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    # negative field elements
    "0100000000000000000000000000000000000000000000000000000000000000",
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
    "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
    "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
    "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
    "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
    "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
    # non-square x^2
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
    "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
    "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
    "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
    "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
    "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
    "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
    "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
    # negative xy value
    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
    "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
    "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
    "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
    "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
    "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
    "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
    "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
    # s = -1, which causes y = 0
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]

IDENTITY_HIGH_BIT = bytes(31) + b"\x80"
"""``00…80``: the identity with bit 255 set, which libsodium 1.0.18 decodes as the identity."""


def high_bit(point: bytes) -> bytes:
    """``point`` with bit 255 set: the same group element to libsodium 1.0.18."""
    return point[:31] + bytes([point[31] | 0x80])


# Valid encodings with bit 255 set: RFC 9496's multiples (the identity gives 00…80)
# and a few multiples of H.
HIGH_BIT_VARIANTS = [high_bit(bytes.fromhex(m)) for m in MULTIPLES] + [
    high_bit(g.mul(k, PEDERSEN_H)) for k in (1, 2**64 + 7, g.ORDER - 1)
]


def test_libsodium_itself_accepts_bit_255() -> None:
    """The premise: without our check these would pass, so the tests below mean something."""
    import rbcl

    for encoding in HIGH_BIT_VARIANTS:
        assert rbcl.crypto_core_ristretto255_is_valid_point(encoding)
    assert IDENTITY_HIGH_BIT in HIGH_BIT_VARIANTS


@pytest.mark.parametrize("encoding", RFC9496_INVALID + [e.hex() for e in HIGH_BIT_VARIANTS])
def test_every_group_entry_point_refuses_invalid_and_bit_255(encoding: str) -> None:
    data = bytes.fromhex(encoding)
    assert not g.is_valid_point(data)
    assert not g.all_valid_points([g.BASEPOINT, data])
    valid = g.mul(7, g.BASEPOINT)
    calls: list[Callable[[], object]] = [
        lambda: g.point_from_bytes(data),
        lambda: g.mul(5, data),
        lambda: g.add(valid, data),
        lambda: g.add(data, valid),
        lambda: g.sub(valid, data),
        lambda: g.sub(data, valid),
        lambda: g.neg(data),
        lambda: g.multiscalar_mul([3, 5], [valid, data]),
    ]
    for call in calls:
        with pytest.raises(g.GroupError) as err:
            call()
        assert err.value.reason == "INVALID_POINT"


def test_canonical_encodings_still_accepted() -> None:
    for m in MULTIPLES:
        data = bytes.fromhex(m)
        assert g.is_valid_point(data)
        assert g.point_from_bytes(data) == data
    assert g.all_valid_points([bytes.fromhex(m) for m in MULTIPLES])


def test_add_and_sub_refuse_an_invalid_operand_that_rbcl_turns_into_the_identity() -> None:
    """rbcl ignores libsodium's error in add/sub and returns a zeroed buffer, the identity."""
    invalid = bytes.fromhex(RFC9496_INVALID[1])
    with pytest.raises(g.GroupError):
        g.add(g.BASEPOINT, invalid)
    with pytest.raises(g.GroupError):
        g.sub(g.BASEPOINT, invalid)
    # A true identity result is still fine.
    assert g.add(g.BASEPOINT, g.neg(g.BASEPOINT)) == g.IDENTITY
    assert g.sub(g.BASEPOINT, g.BASEPOINT) == g.IDENTITY


# --- range proofs --------------------------------------------------------------


BITS = 8


@pytest.fixture(scope="module")
def good() -> RangeStatement:
    proof, commitments = rp.prove_range([3, 200], [g.random_scalar(), g.random_scalar()], BITS)
    return RangeStatement(commitments, proof, BITS)


def _point_offsets(statement: RangeStatement) -> list[tuple[str, int]]:
    """(name, byte offset in the proof) of every point of a proof: A, S, T_1, T_2, L_k, R_k."""
    rounds = (len(statement.proof) // 32 - 9) // 2
    named = [("A", 0), ("S", 32), ("T_1", 64), ("T_2", 96)]
    for k in range(rounds):
        named += [(f"L_{k}", 32 * (7 + 2 * k)), (f"R_{k}", 32 * (8 + 2 * k))]
    return named


def _variants(statement: RangeStatement) -> list[tuple[str, RangeStatement]]:
    """The statement with one point (a commitment or a proof point) replaced by its bit-255
    variant or by ``00…80``."""
    out = []
    for j, commitment in enumerate(statement.commitments):
        for label, bad in (("bit255", high_bit(commitment)), ("00..80", IDENTITY_HIGH_BIT)):
            commitments = list(statement.commitments)
            commitments[j] = bad
            changed = dataclasses.replace(statement, commitments=tuple(commitments))
            out.append((f"V_{j} {label}", changed))
    for name, offset in _point_offsets(statement):
        point = statement.proof[offset : offset + 32]
        for label, bad in (("bit255", high_bit(point)), ("00..80", IDENTITY_HIGH_BIT)):
            proof = statement.proof[:offset] + bad + statement.proof[offset + 32 :]
            out.append((f"{name} {label}", dataclasses.replace(statement, proof=proof)))
    return out


def test_every_range_proof_point_with_bit_255_is_malformed_not_a_crash(
    good: RangeStatement,
) -> None:
    variants = _variants(good)
    assert len(variants) == 2 * (2 + 4 + 2 * 4)  # 2 commitments, A S T1 T2, 4 L and 4 R
    for name, statement in variants:
        with pytest.raises(RangeProofError) as err:
            verify_range(statement)
        assert err.value.reason == "MALFORMED", name
        with pytest.raises(RangeProofError):
            rp.prepare(statement)
        assert batch_verify([good, statement, good]) == [1], name
        assert batch_verify([good, statement, good], first_failure_only=True) == [1], name


def test_one_bad_encoding_does_not_sink_the_batch(good: RangeStatement) -> None:
    variants = [s for _, s in _variants(good)]
    batch = [good, *variants, good]
    assert batch_verify(batch) == list(range(1, len(variants) + 1))


def test_identity_proof_points_are_malformed_on_every_path(good: RangeStatement) -> None:
    for name, offset in _point_offsets(good):
        proof = good.proof[:offset] + g.IDENTITY + good.proof[offset + 32 :]
        statement = dataclasses.replace(good, proof=proof)
        with pytest.raises(RangeProofError) as err:
            verify_range(statement)
        assert err.value.reason == "MALFORMED", name
        assert batch_verify([good, statement]) == [1], name
        assert batch_verify([good, statement], first_failure_only=True) == [1], name


def test_identity_commitment_is_allowed_and_just_does_not_verify(good: RangeStatement) -> None:
    statement = dataclasses.replace(good, commitments=(g.IDENTITY, good.commitments[1]))
    with pytest.raises(RangeProofError) as err:
        verify_range(statement)
    assert err.value.reason == "INVALID"
    assert batch_verify([good, statement]) == [1]


def test_a_proof_made_over_bit_255_encodings_is_refused(
    good: RangeStatement, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prover is made to emit its commitments and T_1, T_2 with bit 255 set: libsodium
    computes with them as the canonical points, so the proof was accepted before."""
    monkeypatch.setattr(rp, "commit", lambda v, r: high_bit(commit(v, r)))
    proof, commitments = rp.prove_range([5, 6], [g.random_scalar(), g.random_scalar()], BITS)
    monkeypatch.undo()
    assert all(c[31] & 0x80 for c in commitments)
    forged = RangeStatement(commitments, proof, BITS)
    with pytest.raises(RangeProofError) as err:
        verify_range(forged)
    assert err.value.reason == "MALFORMED"
    assert batch_verify([good, forged]) == [1]


# --- sigma proofs ----------------------------------------------------------------


def _forge_excess_proof(x: int, excess_encoding: bytes, message: bytes) -> bytes:
    """A Schnorr proof for ``x`` whose challenge hashes ``excess_encoding`` as given."""
    nonce = g.random_scalar()
    r_point = g.mul(nonce, PEDERSEN_H)
    challenge = sigma.schnorr_challenge(sigma.EXCESS_TAG, (excess_encoding,), r_point, message)
    return r_point + g.scalar_to_bytes(nonce + challenge * x)


def test_sigma_proof_over_a_bit_255_excess_is_refused() -> None:
    x = g.random_scalar()
    excess = g.mul(x, PEDERSEN_H)
    assert sigma.verify_excess(excess, b"m", _forge_excess_proof(x, excess, b"m"))
    other = high_bit(excess)
    assert not sigma.verify_excess(other, b"m", _forge_excess_proof(x, other, b"m"))


@pytest.mark.parametrize("bad", HIGH_BIT_VARIANTS, ids=lambda b: b.hex()[:8] + "…" + b.hex()[-2:])
def test_sigma_verifiers_return_false_never_raise(bad: bytes) -> None:
    x = g.random_scalar()
    excess = g.mul(x, PEDERSEN_H)
    r1, r2 = g.random_scalar(), g.random_scalar()
    c1, c2 = commit(9, r1), commit(9, r2)
    cz = commit(0, r1)
    excess_proof = sigma.prove_excess(x, b"m")
    equal_proof = sigma.prove_equal_commitments(r1, r2, c1, c2, b"m")
    zero_proof = sigma.prove_commitment_to_zero(r1, cz, b"m")
    assert sigma.verify_excess(excess, b"m", excess_proof)
    assert sigma.verify_equal_commitments(c1, c2, b"m", equal_proof)
    assert sigma.verify_commitment_to_zero(cz, b"m", zero_proof)
    # A bad statement point, and a bad R in the proof.
    assert not sigma.verify_excess(bad, b"m", excess_proof)
    assert not sigma.verify_excess(excess, b"m", bad + excess_proof[32:])
    assert not sigma.verify_equal_commitments(bad, c2, b"m", equal_proof)
    assert not sigma.verify_equal_commitments(c1, bad, b"m", equal_proof)
    assert not sigma.verify_equal_commitments(c1, c2, b"m", bad + equal_proof[32:])
    assert not sigma.verify_commitment_to_zero(bad, b"m", zero_proof)
    assert not sigma.verify_commitment_to_zero(cz, b"m", bad + zero_proof[32:])
    # R with bit 255 set, same element: refused (it was already, as R is compared by bytes).
    assert not sigma.verify_excess(excess, b"m", high_bit(excess_proof[:32]) + excess_proof[32:])


@pytest.mark.parametrize("encoding", RFC9496_INVALID)
def test_sigma_verifiers_refuse_rfc9496_invalid_encodings(encoding: str) -> None:
    bad = bytes.fromhex(encoding)
    proof = sigma.prove_commitment_to_zero(5, g.mul(5, PEDERSEN_H), b"m")
    assert not sigma.verify_excess(bad, b"m", proof)
    assert not sigma.verify_commitment_to_zero(bad, b"m", proof)
    assert not sigma.verify_equal_commitments(bad, bad, b"m", proof)
    assert not sigma.verify_commitment_to_zero(g.mul(5, PEDERSEN_H), b"m", bad + proof[32:])


# --- python -m privacy verify ----------------------------------------------------


def test_cli_verify_refuses_bit_255_as_malformed_without_a_traceback() -> None:
    """Exit 2 (malformed) with a message; 00…80 used to escape as a GroupError (exit 1)."""
    import json

    from click.testing import CliRunner

    from privacy.cli import cli

    runner = CliRunner()
    made = runner.invoke(cli, ["prove", "--bits", "8", "--values", "5,7"])
    assert made.exit_code == 0, made.output
    good = json.loads(made.stdout)
    assert runner.invoke(cli, ["verify"], input=json.dumps(good)).exit_code == 0
    proof = bytes.fromhex(good["proof"])
    commitment = bytes.fromhex(good["commitments"][0])
    variants = [
        {**good, "commitments": [IDENTITY_HIGH_BIT.hex(), good["commitments"][1]]},
        {**good, "commitments": [high_bit(commitment).hex(), good["commitments"][1]]},
        {**good, "proof": (IDENTITY_HIGH_BIT + proof[32:]).hex()},
        {**good, "proof": (proof[:64] + high_bit(proof[64:96]) + proof[96:]).hex()},
    ]
    for obj in variants:
        result = runner.invoke(cli, ["verify"], input=json.dumps(obj))
        assert result.exit_code == 2, (result.output, result.exception)
        assert isinstance(result.exception, SystemExit)


# --- memos ---------------------------------------------------------------------


def test_a_memo_does_not_open_a_bit_255_commitment() -> None:
    """open_memo compares commit(v, r), always canonical, with the commitment's bytes."""
    from privacy.memo import MemoError, Opening, generate_memo_keypair, open_memo, seal_memo

    private, public = generate_memo_keypair()
    opening = Opening(42, g.random_scalar(), bytes(32), b"")
    memo = seal_memo(opening, public)
    assert open_memo(memo, private, opening.commitment()) == opening
    for bad in (high_bit(opening.commitment()), IDENTITY_HIGH_BIT):
        with pytest.raises(MemoError) as err:
            open_memo(memo, private, bad)
        assert err.value.reason == "OPENING_MISMATCH"
    zero = Opening(0, 0, bytes(32), b"")  # commits to the identity
    assert zero.commitment() == g.IDENTITY
    with pytest.raises(MemoError) as err:
        open_memo(seal_memo(zero, public), private, IDENTITY_HIGH_BIT)
    assert err.value.reason == "OPENING_MISMATCH"
