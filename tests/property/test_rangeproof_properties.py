"""Hypothesis: completeness of range proofs in both transcripts, singly and in batches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import group as g
from privacy.rangeproof import (
    RangeProofError,
    RangeStatement,
    batch_verify,
    prove_range,
    verify_range,
)

BITS = st.sampled_from([8, 16, 32, 64])
KINDS = st.sampled_from(["merlin", "default"])
BLINDING = st.integers(min_value=0, max_value=g.ORDER - 1)


@st.composite
def statements(draw: st.DrawFn, max_parties: int = 4) -> tuple[list[int], list[int], int, str]:
    bits = draw(BITS)
    parties = draw(st.sampled_from([p for p in (1, 2, 4, 8, 16) if p <= max_parties]))
    edge = st.sampled_from([0, 1, (1 << bits) - 1, (1 << bits) - 2])
    value = st.one_of(edge, st.integers(min_value=0, max_value=(1 << bits) - 1))
    values = draw(st.lists(value, min_size=parties, max_size=parties))
    blindings = draw(st.lists(BLINDING, min_size=parties, max_size=parties))
    return values, blindings, bits, draw(KINDS)


@settings(max_examples=10)
@given(statements())
def test_honest_proofs_verify(case: tuple[list[int], list[int], int, str]) -> None:
    values, blindings, bits, kind = case
    proof, commitments = prove_range(values, blindings, bits, transcript=kind)
    verify_range(RangeStatement(commitments, proof, bits, kind))


@settings(max_examples=5)
@given(st.lists(statements(max_parties=2), min_size=1, max_size=4))
def test_honest_batches_verify(cases: list[tuple[list[int], list[int], int, str]]) -> None:
    batch = []
    for values, blindings, bits, kind in cases:
        proof, commitments = prove_range(values, blindings, bits, transcript=kind)
        batch.append(RangeStatement(commitments, proof, bits, kind))
    assert batch_verify(batch) == []


@settings(max_examples=10)
@given(BITS, st.one_of(st.integers(max_value=-1), st.integers(min_value=2**64)), st.data())
def test_out_of_range_values_are_refused(bits: int, beyond: int, data: st.DataObject) -> None:
    value = beyond if beyond < 0 else data.draw(st.integers(min_value=1 << bits))
    try:
        prove_range([value], [1], bits)
    except RangeProofError as err:
        assert err.reason == "INVALID"
    else:
        raise AssertionError("prover accepted an out-of-range value")
