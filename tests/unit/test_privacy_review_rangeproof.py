"""Adversarial review of range-proof verification: every proof section is
constrained, malformed input only ever raises the typed error, bisection names
every bad proof, and a mistyped statement cannot sink a batch."""

from __future__ import annotations

import dataclasses
import random

import pytest

from privacy import group as g
from privacy.rangeproof import (
    RangeProofError,
    RangeStatement,
    batch_verify,
    prove_range,
    verify_range,
)

SECTIONS_2X8 = ["A", "S", "T_1", "T_2", "t_x", "t_x_blinding", "e_blinding"]
SECTIONS_2X8 += [f"{side}_{k}" for k in range(4) for side in ("L", "R")] + ["a", "b"]


def _statement(values: list[int], bits: int = 8, kind: str = "default") -> RangeStatement:
    blindings = [g.random_scalar() for _ in values]
    proof, commitments = prove_range(values, blindings, bits, transcript=kind)
    return RangeStatement(commitments, proof, bits, kind)


@pytest.mark.parametrize("kind", ["default", "merlin"])
def test_every_section_of_the_proof_is_constrained(kind: str) -> None:
    good = _statement([3, 250], kind=kind)
    verify_range(good)
    chunks = len(good.proof) // 32
    assert chunks == len(SECTIONS_2X8)
    for index, name in enumerate(SECTIONS_2X8):
        for byte in (0, 17):  # low bytes: scalars stay canonical, points may stay valid
            tampered = bytearray(good.proof)
            tampered[32 * index + byte] ^= 0x01
            with pytest.raises(RangeProofError):
                verify_range(dataclasses.replace(good, proof=bytes(tampered)))
            assert batch_verify([good, dataclasses.replace(good, proof=bytes(tampered))]) == [1], (
                name
            )
    # Replacing a scalar by another canonical scalar (not a bit flip) also fails.
    for index in (4, 5, 6, chunks - 2, chunks - 1):
        other = g.scalar_to_bytes(g.random_scalar())
        swapped = good.proof[: 32 * index] + other + good.proof[32 * index + 32 :]
        with pytest.raises(RangeProofError) as err:
            verify_range(dataclasses.replace(good, proof=swapped))
        assert err.value.reason == "INVALID", SECTIONS_2X8[index]
    # Swapping two valid points (L_0 with R_0, T_1 with T_2) fails.
    parts = [good.proof[32 * k : 32 * k + 32] for k in range(chunks)]
    for left, right in ((2, 3), (7, 8), (0, 1)):
        mixed = list(parts)
        mixed[left], mixed[right] = mixed[right], mixed[left]
        with pytest.raises(RangeProofError):
            verify_range(dataclasses.replace(good, proof=b"".join(mixed)))


def test_non_int_bits_is_a_typed_error_and_does_not_sink_a_batch() -> None:
    good = _statement([3, 250])
    for bits in (8.0, "8", None, b"8"):
        bad = dataclasses.replace(good, bits=bits)  # type: ignore[arg-type]
        with pytest.raises(RangeProofError) as err:
            verify_range(bad)
        assert err.value.reason == "UNSUPPORTED"
        assert batch_verify([good, bad, good]) == [1]
    with pytest.raises(RangeProofError):
        prove_range([1], [1], 8.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_positions", [(3, 12), (0, 1), (5, 6, 7), (0, 9, 15)])
def test_bisection_names_every_bad_proof_among_16(bad_positions: tuple[int, ...]) -> None:
    statements = [_statement([k, 255 - k]) for k in range(16)]
    batch = list(statements)
    for position in bad_positions:
        donor = statements[(position + 1) % 16]
        batch[position] = dataclasses.replace(batch[position], proof=donor.proof)
    assert batch_verify(batch) == list(bad_positions)
    assert batch_verify(statements) == []


def _mutate(proof: bytes, rng: random.Random) -> bytes:
    data = bytearray(proof)
    op = rng.randrange(5)
    if op == 0:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == 1:
        # Flip a low bit: scalars stay canonical, so this reaches the equation more often.
        data[32 * rng.randrange(len(data) // 32)] ^= 1 << rng.randrange(4)
    elif op == 2:
        del data[rng.randrange(len(data)) :]
    elif op == 3:
        data += bytes(rng.randrange(256) for _ in range(rng.choice((1, 31, 32, 64))))
    else:
        start = rng.randrange(len(data) // 32) * 32
        data[start : start + 32] = rng.randbytes(32)
    return bytes(data)


def test_seeded_fuzz_only_typed_errors_and_indices() -> None:
    rng = random.Random(0x5EED)
    seeds = [_statement([7, 200]), _statement([1], bits=16, kind="merlin")]
    mutated: list[RangeStatement] = []
    for _ in range(120):
        base = rng.choice(seeds)
        changed = dataclasses.replace(base, proof=_mutate(base.proof, rng))
        if changed.proof == base.proof:
            continue
        try:
            verify_range(changed)
        except RangeProofError as err:
            assert err.reason in {"MALFORMED", "INVALID"}
        else:
            raise AssertionError("a mutated proof verified")
        mutated.append(changed)
    batch = [*seeds, *mutated[:40], *seeds]
    assert batch_verify(batch) == list(range(2, 2 + len(mutated[:40])))
