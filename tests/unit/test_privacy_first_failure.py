"""``batch_verify(..., first_failure_only=True)`` (issue 8 §2.2): the block path stops at
the first bad proof, so a block full of bad proofs costs about as much as a block with
one, while the answer is exactly the lowest index full bisection would report."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

import pytest

from privacy import group as g
from privacy import rangeproof as rp
from privacy.rangeproof import (
    RangeStatement,
    batch_verify,
    batch_verify_first_failure,
    prove_range,
)

BITS = 8


def _statement(value: int) -> RangeStatement:
    proof, commitments = prove_range([value, 255 - value], [g.random_scalar()] * 2, BITS)
    return RangeStatement(commitments, proof, BITS)


@pytest.fixture(scope="module")
def valid() -> list[RangeStatement]:
    return [_statement(v) for v in range(16)]


def _bad_equation(s: RangeStatement) -> RangeStatement:
    """Well-formed, fails only the equation (t_x changed)."""
    t_x = int.from_bytes(s.proof[128:160], "little")
    return dataclasses.replace(s, proof=s.proof[:128] + g.scalar_to_bytes(t_x + 1) + s.proof[160:])


def _bad_point(s: RangeStatement) -> RangeStatement:
    """An invalid point encoding that only the deferred (libsodium) validation catches."""
    invalid = bytes.fromhex("26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371")
    return dataclasses.replace(s, proof=s.proof[:32] + invalid + s.proof[64:])


def _bad_parse(s: RangeStatement) -> RangeStatement:
    """Refused while parsing (wrong length)."""
    return dataclasses.replace(s, proof=s.proof[:-1])


BREAKERS = [_bad_equation, _bad_point, _bad_parse]


class _Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = rp.combined_check_holds

        def counting(checks: Sequence[rp.PreparedCheck]) -> bool:
            self.calls += 1
            return real(checks)

        monkeypatch.setattr(rp, "combined_check_holds", counting)


def test_first_failure_is_the_lowest_index_full_bisection_reports(
    valid: list[RangeStatement],
) -> None:
    rng = random.Random(8_2_2)
    for _ in range(25):
        batch = list(valid)
        for index in rng.sample(range(len(batch)), rng.randint(0, 5)):
            batch[index] = rng.choice(BREAKERS)(batch[index])
        full = batch_verify(batch)
        expected = full[:1]
        assert batch_verify(batch, first_failure_only=True) == expected, full
        assert batch_verify_first_failure(batch) == expected


def test_each_kind_of_failure_before_another(valid: list[RangeStatement]) -> None:
    for first in BREAKERS:
        for later in BREAKERS:
            batch = list(valid[:6])
            batch[2] = first(batch[2])
            batch[4] = later(batch[4])
            assert batch_verify(batch, first_failure_only=True) == [2], (first, later)
            assert batch_verify(batch) == [2, 4]
    assert batch_verify([], first_failure_only=True) == []
    assert batch_verify(valid, first_failure_only=True) == []


def test_a_block_of_bad_proofs_costs_one_plus_log2_checks(
    valid: list[RangeStatement], monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 bad statements: 1 + log2(16) = 5 combined checks, not 2·16 − 1 = 31."""
    all_bad = [_bad_equation(s) for s in valid]
    counter = _Counter(monkeypatch)
    assert batch_verify(all_bad, first_failure_only=True) == [0]
    assert counter.calls == 5
    counter.calls = 0
    assert batch_verify(all_bad) == list(range(16))
    assert counter.calls == 31  # full bisection (the mempool's mode) visits every node
    counter.calls = 0
    one_bad = list(valid)
    one_bad[11] = _bad_equation(valid[11])
    assert batch_verify(one_bad, first_failure_only=True) == [11]
    assert counter.calls == 5


def test_statements_after_the_first_malformed_one_are_not_parsed(
    valid: list[RangeStatement], monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = list(valid[:8])
    batch[3] = _bad_parse(batch[3])
    replayed: list[RangeStatement] = []
    real = rp._replay

    def spying(statement: RangeStatement, *, check_points: bool) -> rp._Replayed:
        replayed.append(statement)
        return real(statement, check_points=check_points)

    monkeypatch.setattr(rp, "_replay", spying)
    assert batch_verify(batch, first_failure_only=True) == [3]
    assert replayed == batch[:4]
