"""Range proofs: our prover for every (n, m), soundness, strict parsing, batching and bisection."""

from __future__ import annotations

import dataclasses

import pytest

from privacy import group as g
from privacy import msm
from privacy import rangeproof as rp
from privacy.pedersen import commit
from privacy.rangeproof import (
    DEFAULT_LABEL,
    SUPPORTED_BITS,
    SUPPORTED_PARTIES,
    RangeProofError,
    RangeStatement,
    batch_verify,
    parse_proof,
    proof_size,
    prove_range,
    verify_range,
)
from privacy.transcript import make_transcript


def _values(bits: int, parties: int) -> list[int]:
    top = (1 << bits) - 1
    return [(0, top, 1, top - 1, 5)[j % 5] for j in range(parties)]


def _blindings(parties: int) -> list[int]:
    return [g.random_scalar() for _ in range(parties)]


def _reason(statement: RangeStatement) -> str:
    with pytest.raises(RangeProofError) as err:
        verify_range(statement)
    return err.value.reason


def test_public_constants() -> None:
    assert DEFAULT_LABEL == b"veil/rangeproof/v1"
    assert SUPPORTED_BITS == (8, 16, 32, 64)
    assert SUPPORTED_PARTIES == (1, 2, 4, 8, 16)
    assert issubclass(RangeProofError, ValueError)
    assert RangeProofError("INVALID", "x").reason == "INVALID"
    with pytest.raises(ValueError, match="unknown"):
        RangeProofError("BAD", "x")


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("parties", SUPPORTED_PARTIES)
def test_merlin_prover_makes_dalek_format_proofs(bits: int, parties: int) -> None:
    values = _values(bits, parties)
    blindings = _blindings(parties)
    proof, commitments = prove_range(
        values, blindings, bits, transcript="merlin", label=b"dalek interop"
    )
    assert (
        len(proof) == proof_size(bits, parties) == 32 * (9 + 2 * (bits * parties).bit_length() - 2)
    )
    assert commitments == tuple(commit(v, r) for v, r in zip(values, blindings, strict=True))
    statement = RangeStatement(commitments, proof, bits, "merlin", b"dalek interop")
    verify_range(statement)
    assert parse_proof(proof, bits, parties).to_bytes() == proof
    assert _reason(dataclasses.replace(statement, transcript="default")) == "INVALID"


def test_default_is_the_default() -> None:
    proof, commitments = prove_range([3, 200], _blindings(2), 8)
    verify_range(RangeStatement(commitments, proof, 8))
    assert _reason(RangeStatement(commitments, proof, 8, label=b"veil/rangeproof/v2")) == "INVALID"
    assert _reason(RangeStatement(commitments, proof, 8, transcript="merlin")) == "INVALID"
    assert _reason(RangeStatement(commitments[::-1], proof, 8)) == "INVALID"


def test_prover_refuses_out_of_range_and_bad_parameters() -> None:
    for value in (256, -1, 2**64, g.ORDER - 1):
        with pytest.raises(RangeProofError) as err:
            prove_range([value], [1], 8)
        assert err.value.reason == "INVALID"
    with pytest.raises(RangeProofError) as err:
        prove_range([2**64], [1], 64)
    assert err.value.reason == "INVALID"
    for bits in (0, 7, 12, 128):
        with pytest.raises(RangeProofError) as err:
            prove_range([1], [1], bits)
        assert err.value.reason == "UNSUPPORTED"
    for parties in (0, 3, 32):
        with pytest.raises(RangeProofError) as err:
            prove_range([1] * parties, [1] * parties, 8)
        assert err.value.reason == "UNSUPPORTED"
    with pytest.raises(ValueError, match="one blinding per value"):
        prove_range([1, 2], [1], 8)
    with pytest.raises(ValueError, match="transcript"):
        prove_range([1], [1], 8, transcript="sha1")
    with pytest.raises(TypeError):
        prove_range([True], [1], 8)


@pytest.mark.parametrize(
    ("values", "bits"), [([256], 8), ([2**16 + 5], 16), ([-1], 8), ([3, 2**32], 32)]
)
def test_unchecked_prover_output_fails_verification(values: list[int], bits: int) -> None:
    blindings = _blindings(len(values))
    proof, commitments = rp._prove_unchecked(
        values, blindings, bits, make_transcript("default", DEFAULT_LABEL)
    )
    assert commitments == tuple(commit(v, r) for v, r in zip(values, blindings, strict=True))
    assert _reason(RangeStatement(commitments, proof, bits)) == "INVALID"
    assert batch_verify([RangeStatement(commitments, proof, bits)]) == [0]
    # Control: the same unchecked prover with in-range values does verify.
    ok_values = [v % (1 << bits) for v in values]
    ok_proof, ok_commitments = rp._prove_unchecked(
        ok_values, blindings, bits, make_transcript("default", DEFAULT_LABEL)
    )
    verify_range(RangeStatement(ok_commitments, ok_proof, bits))


def test_strict_parsing_reasons() -> None:
    proof, commitments = prove_range([7, 9], _blindings(2), 8)
    good = RangeStatement(commitments, proof, 8)
    verify_range(good)
    size = len(proof)
    for cut in (proof[:-1], proof + b"\x00", proof[:-64], b"", proof[: size - 32]):
        assert _reason(dataclasses.replace(good, proof=cut)) == "MALFORMED"
    non_canonical = (g.ORDER).to_bytes(32, "little")
    for chunk in (4, 5, 6, size // 32 - 2, size // 32 - 1):
        bad = proof[: 32 * chunk] + non_canonical + proof[32 * chunk + 32 :]
        assert _reason(dataclasses.replace(good, proof=bad)) == "MALFORMED"
    invalid_point = bytes.fromhex("ff" * 31 + "7f")
    for chunk in (0, 1, 2, 3, 7, 8, size // 32 - 3):
        for replacement in (g.IDENTITY, invalid_point):
            bad = proof[: 32 * chunk] + replacement + proof[32 * chunk + 32 :]
            assert _reason(dataclasses.replace(good, proof=bad)) == "MALFORMED"
    bad_commitments = (commitments[0], invalid_point)
    assert _reason(dataclasses.replace(good, commitments=bad_commitments)) == "MALFORMED"
    assert _reason(dataclasses.replace(good, commitments=(commitments[0], b"\x01"))) == "MALFORMED"
    assert _reason(dataclasses.replace(good, bits=12)) == "UNSUPPORTED"
    assert _reason(dataclasses.replace(good, commitments=commitments * 3)) in {"UNSUPPORTED"}
    assert _reason(dataclasses.replace(good, commitments=())) == "UNSUPPORTED"
    assert _reason(dataclasses.replace(good, transcript="sha1")) == "UNSUPPORTED"
    assert _reason(dataclasses.replace(good, proof="00" * size)) == "MALFORMED"  # type: ignore[arg-type]


def test_identity_commitment_is_allowed_as_in_dalek() -> None:
    proof, commitments = prove_range([0], [0], 8)
    assert commitments == (g.IDENTITY,)
    verify_range(RangeStatement(commitments, proof, 8))


def test_batch_of_32_with_one_bad_proof_names_it() -> None:
    statements = []
    for k in range(32):
        proof, commitments = prove_range([k, 255 - k], _blindings(2), 8)
        statements.append(RangeStatement(commitments, proof, 8))
    assert batch_verify(statements) == []
    bad_index = 19
    other = statements[(bad_index + 1) % 32]
    statements[bad_index] = dataclasses.replace(
        statements[bad_index], commitments=other.commitments
    )
    assert batch_verify(statements) == [bad_index]
    with pytest.raises(RangeProofError):
        verify_range(statements[bad_index])


def test_parse_names_the_first_bad_part_in_proof_order() -> None:
    proof, _ = prove_range([7, 9], _blindings(2), 8)  # N = 16: 4 rounds
    parsed = rp.parse_proof(proof, 8, 2)
    assert parsed.to_bytes() == proof
    names = ["A", "S", "T_1", "T_2", "t_x", "t_x_blinding", "e_blinding"]
    names += [f"{side}_{k}" for k in range(4) for side in ("L", "R")] + ["a", "b"]
    invalid_point = bytes.fromhex("ff" * 31 + "7f")
    non_canonical = g.ORDER.to_bytes(32, "little")
    for chunk, name in enumerate(names):
        is_scalar = name in {"t_x", "t_x_blinding", "e_blinding", "a", "b"}
        for replacement in (non_canonical,) if is_scalar else (g.IDENTITY, invalid_point):
            bad = proof[: 32 * chunk] + replacement + proof[32 * chunk + 32 :]
            with pytest.raises(RangeProofError) as err:
                rp.parse_proof(bad, 8, 2)
            assert str(err.value).startswith(f"MALFORMED: {name}: ")
    # With two bad parts the same one is named as before: the points A..T_2, the
    # scalars t_x..e_blinding, every L, every R, then a and b.
    bad = proof[: 32 * 8] + invalid_point + g.IDENTITY + proof[32 * 10 :]  # R_0, L_1
    with pytest.raises(RangeProofError, match="MALFORMED: L_1: "):
        rp.parse_proof(bad, 8, 2)
    bad = proof[: 32 * 6] + non_canonical + proof[32 * 7 : 32 * 10] + g.IDENTITY + proof[32 * 11 :]
    with pytest.raises(RangeProofError, match="MALFORMED: e_blinding: "):
        rp.parse_proof(bad, 8, 2)


def _with_chunk(proof: bytes, chunk: int, replacement: bytes) -> bytes:
    return proof[: 32 * chunk] + replacement + proof[32 * chunk + 32 :]


@pytest.mark.parametrize("weights", ["random", "one"])
def test_batch_finds_invalid_point_encodings(weights: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # batch_verify leaves point validation to libsodium's decoding in the
    # combined multiplication; every invalid encoding must still be reported.
    # With every weight (and c) equal to 1, A's merged scalar is 1: an addition,
    # which libsodium does not check, so the point is validated explicitly.
    if weights == "one":
        monkeypatch.setattr(rp, "random_scalar", lambda: 1)
    invalid_point = bytes.fromhex("ff" * 31 + "7f")
    statements = []
    for _ in range(6):
        proof, commitments = prove_range(_values(8, 2), _blindings(2), 8)
        statements.append(RangeStatement(commitments, proof, 8))
    assert batch_verify(statements) == []
    broken = list(statements)
    broken[0] = dataclasses.replace(broken[0], proof=_with_chunk(broken[0].proof, 0, invalid_point))
    broken[2] = dataclasses.replace(broken[2], proof=_with_chunk(broken[2].proof, 9, invalid_point))
    broken[3] = dataclasses.replace(
        broken[3], commitments=(invalid_point, broken[3].commitments[1])
    )
    tampered = bytearray(broken[5].proof)
    tampered[32 * 4] ^= 1  # t_x: well-formed but false
    broken[5] = dataclasses.replace(broken[5], proof=bytes(tampered))
    assert batch_verify(broken) == [0, 2, 3, 5]
    for index in (0, 2, 3):
        assert _reason(broken[index]) == "MALFORMED"
    # The same invalid encoding in two statements (merged into one term).
    shared = [broken[0], statements[1], dataclasses.replace(statements[4], proof=broken[0].proof)]
    assert batch_verify(shared) == [0, 2]
    assert batch_verify([broken[3]]) == [0]


@pytest.mark.parametrize("scalar", [0, 1, g.ORDER - 1, g.ORDER + 1, 2 * g.ORDER])
def test_unchecked_point_without_multiplication_is_validated(scalar: int) -> None:
    # Merged scalars 0, 1 and −1 are skipped, added or subtracted, and libsodium's
    # addition does not report an invalid encoding: such points are checked first.
    invalid_point = bytes.fromhex("ff" * 31 + "7f")
    zero = msm.ProductVector(0, (0, 0, 0))
    check = rp.PreparedCheck(
        8, 1, zero, (zero, zero), 0, 0, 0, [(scalar, invalid_point)], (invalid_point,)
    )
    with pytest.raises(rp._UncheckedPointError):
        rp.combined_check_holds([check])
    assert rp.combined_check_holds([dataclasses.replace(check, terms=[], unchecked=())])


def test_batch_mixes_sizes_and_transcripts_and_reports_malformed() -> None:
    statements = []
    for bits, parties, kind in [
        (8, 1, "default"),
        (16, 4, "merlin"),
        (8, 2, "default"),
        (32, 1, "merlin"),
        (8, 16, "default"),
        (64, 2, "default"),
    ]:
        values = _values(bits, parties)
        proof, commitments = prove_range(values, _blindings(parties), bits, transcript=kind)
        statements.append(RangeStatement(commitments, proof, bits, kind))
    assert batch_verify(statements) == []
    assert batch_verify([]) == []
    broken = list(statements)
    broken[1] = dataclasses.replace(broken[1], proof=broken[1].proof[:-1])  # malformed
    broken[3] = dataclasses.replace(broken[3], bits=12)  # unsupported
    tampered = bytearray(broken[4].proof)
    tampered[32 * 5] ^= 1  # t_x_blinding
    broken[4] = dataclasses.replace(broken[4], proof=bytes(tampered))
    assert batch_verify(broken) == [1, 3, 4]
    # Two bad in the same half and one alone: bisection finds all of them.
    many = statements * 3
    many[0] = broken[4]
    many[2] = dataclasses.replace(statements[2], label=b"other")
    many[17] = dataclasses.replace(statements[5], commitments=statements[5].commitments[::-1])
    assert batch_verify(many) == [0, 2, 17]


def test_same_commitment_in_many_statements_is_merged() -> None:
    blinding = g.random_scalar()
    proof_a, commitments = prove_range([42], [blinding], 8)
    proof_b, again = prove_range([42], [blinding], 8)
    assert commitments == again
    assert proof_a != proof_b
    statements = [RangeStatement(commitments, proof_a, 8), RangeStatement(commitments, proof_b, 8)]
    assert batch_verify(statements) == []
    assert batch_verify([statements[0], dataclasses.replace(statements[1], bits=16)]) == [1]


def test_delta_closed_form_matches_direct_sum() -> None:
    for bits, parties in [(8, 1), (64, 2), (16, 16)]:
        for y in (1, 2, g.random_scalar()):
            z = g.random_scalar()
            total = bits * parties
            sum_y = sum(pow(y, i, g.ORDER) for i in range(total))
            sum_z = sum(pow(z, j, g.ORDER) for j in range(parties))
            direct = ((z - z * z) * sum_y - z**3 * ((1 << bits) - 1) * sum_z) % g.ORDER
            inv = pow(y - 1, -1, g.ORDER) if y != 1 else None
            assert rp._delta(bits, parties, y, z, inv) == direct


def test_bit_products_matches_direct_products() -> None:
    for rounds in (3, 4, 7, 10):
        seed = g.random_scalar()
        factors = [g.random_scalar() for _ in range(rounds)]
        got = msm.bit_products(seed, factors)
        assert len(got) == 1 << rounds
        for i in (0, 1, 5, (1 << rounds) - 2, (1 << rounds) - 1):
            direct = seed
            for r in range(rounds):
                if i >> r & 1:
                    direct = direct * factors[r] % g.ORDER
            assert got[i] % g.ORDER == direct
            assert 0 <= got[i] < g.ORDER**2


def test_batch_inversion() -> None:
    values = [g.random_scalar() for _ in range(9)] + [1, g.ORDER - 1]
    assert rp._batch_invert(values) == [pow(v, -1, g.ORDER) for v in values]


def test_batch_multiplies_each_shared_point_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    real = msm.multiscalar_mul

    def counting(
        scalars: list[int],
        points: list[bytes],
        *,
        fixed: msm.FixedPoints | None = None,
        fixed_scalars: msm.ScalarVector | list[int] = (),  # type: ignore[assignment]
    ) -> bytes:
        # Fixed (generator) terms count when their scalar is not zero mod ℓ.
        ints = fixed_scalars if isinstance(fixed_scalars, list) else fixed_scalars.to_ints()
        used_fixed = (
            [p for p, s in zip(fixed.points, ints, strict=False) if s % g.ORDER] if fixed else []
        )
        calls.append((len(points) + len(used_fixed), len(set(points) | set(used_fixed))))
        return real(scalars, points, fixed=fixed, fixed_scalars=fixed_scalars)

    monkeypatch.setattr(msm, "multiscalar_mul", counting)
    shapes = [(64, 2), (64, 2), (8, 4), (64, 1)]
    statements = []
    for bits, parties in shapes:
        proof, commitments = prove_range(_values(bits, parties), _blindings(parties), bits)
        statements.append(RangeStatement(commitments, proof, bits))
    calls.clear()
    assert batch_verify(statements) == []
    assert len(calls) == 1
    terms, distinct = calls[0]
    assert terms == distinct
    # Generators: party j's first max-n slots, shared by every proof that uses them.
    shared = 2 * (64 * 2 + 8 * 2) + 2  # parties 0-1 up to 64 bits, parties 2-3 up to 8 bits
    own = sum(4 + parties + 2 * (bits * parties).bit_length() - 2 for bits, parties in shapes)
    assert terms == shared + own
    calls.clear()
    verify_range(statements[0])
    assert calls == [(2 * 128 + 2 + 4 + 2 + 2 * 7,) * 2]
