"""privacy.excess_batch and the deferred checks of privacy.sigma: a batch names exactly
the proofs the single check refuses, and every answer it gives is remembered."""

from __future__ import annotations

import random
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import excess_batch, group, msm, sigma
from privacy.excess_batch import BATCH_MIN, batch_verify_excess
from privacy.generators import PEDERSEN_G, PEDERSEN_H
from privacy.sigma import (
    ExcessCheck,
    deferring_excess_checks,
    remembered_excess_answer,
    verify_excess,
)


def valid_check(rng: random.Random) -> ExcessCheck:
    x = rng.randrange(1, group.ORDER)
    message = rng.randbytes(32)
    return ExcessCheck(group.mul(x, PEDERSEN_H), message, sigma.prove_excess(x, message))


def _with_s(check: ExcessCheck, s: int) -> ExcessCheck:
    return ExcessCheck(check.excess, check.message, check.proof[:32] + s.to_bytes(32, "little"))


def _high_bit(point: bytes) -> bytes:
    return point[:31] + bytes([point[31] | 0x80])


TAMPERINGS = {
    "another message": lambda c: ExcessCheck(c.excess, c.message[::-1], c.proof),
    "s + 1": lambda c: _with_s(c, (int.from_bytes(c.proof[32:], "little") + 1) % group.ORDER),
    "s = ℓ": lambda c: _with_s(c, group.ORDER),
    "another R": lambda c: ExcessCheck(c.excess, c.message, PEDERSEN_G + c.proof[32:]),
    "R the identity": lambda c: ExcessCheck(c.excess, c.message, group.IDENTITY + c.proof[32:]),
    "R with bit 255": lambda c: ExcessCheck(
        c.excess, c.message, _high_bit(c.proof[:32]) + c.proof[32:]
    ),
    "R not a point": lambda c: ExcessCheck(
        c.excess, c.message, b"\xff" * 31 + b"\x7f" + c.proof[32:]
    ),
    "E with a G part": lambda c: ExcessCheck(group.add(c.excess, PEDERSEN_G), c.message, c.proof),
    "E the identity": lambda c: ExcessCheck(group.IDENTITY, c.message, c.proof),
    "E with bit 255": lambda c: ExcessCheck(_high_bit(c.excess), c.message, c.proof),
    "E not a point": lambda c: ExcessCheck(b"\xff" * 31 + b"\x7f", c.message, c.proof),
    "short proof": lambda c: ExcessCheck(c.excess, c.message, c.proof[:63]),
    "not bytes": lambda c: ExcessCheck(c.excess, c.message, bytearray(c.proof)),  # type: ignore[arg-type]
}


def single_answers(checks: list[ExcessCheck]) -> list[int]:
    return [i for i, c in enumerate(checks) if not sigma.check_excess(c.excess, c.message, c.proof)]


def test_valid_proofs_pass_as_one_sum_and_their_answers_are_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(1)
    checks = [valid_check(rng) for _ in range(BATCH_MIN + 2)]
    sums: list[bool] = []
    real_sum = excess_batch._sum_vanishes

    def counted_sum(*args: list[int] | list[bytes] | int) -> bool:
        sums.append(real_sum(*args))  # type: ignore[arg-type]
        return sums[-1]

    monkeypatch.setattr(excess_batch, "_sum_vanishes", counted_sum)
    assert batch_verify_excess(checks) == []
    assert sums == [True]  # one sum, and it vanished: no single check was needed

    def no_more_checks(*args: object) -> bool:
        raise AssertionError("verify_excess checked a proof the batch answered")

    monkeypatch.setattr(sigma, "check_excess", no_more_checks)
    assert all(verify_excess(c.excess, c.message, c.proof) for c in checks)
    assert batch_verify_excess(checks) == [] and sums == [True]  # remembered: no sum either


@pytest.mark.parametrize("how", sorted(TAMPERINGS))
def test_each_bad_proof_is_named_and_the_good_ones_still_pass(how: str) -> None:
    rng = random.Random(how)
    checks = [valid_check(rng) for _ in range(BATCH_MIN + 1)]
    checks[2] = TAMPERINGS[how](checks[2])
    assert single_answers(checks) == [2]
    assert batch_verify_excess(checks) == [2]
    # A proof that is not bytes is refused but not remembered (not hashable).
    assert remembered_excess_answer(checks[2]) is (None if how == "not bytes" else False)
    assert remembered_excess_answer(checks[0]) is True
    assert verify_excess(checks[2].excess, checks[2].message, checks[2].proof) is False


def test_below_the_batch_minimum_each_proof_is_checked_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(2)
    checks = [valid_check(rng) for _ in range(BATCH_MIN - 1)]
    checks[0] = TAMPERINGS["s + 1"](checks[0])

    def no_sum(*args: object) -> bool:
        raise AssertionError("a sum for fewer than BATCH_MIN proofs")

    monkeypatch.setattr(excess_batch, "_sum_vanishes", no_sum)
    assert batch_verify_excess(checks) == [0]
    assert batch_verify_excess([]) == []


def test_with_the_libsodium_backend_each_proof_is_checked_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(4)
    checks = [valid_check(rng) for _ in range(BATCH_MIN + 1)]
    checks[1] = TAMPERINGS["another R"](checks[1])

    def no_sum(*args: object) -> bool:
        raise AssertionError("a sum with the libsodium backend")

    monkeypatch.setattr(excess_batch, "_sum_vanishes", no_sum)
    with msm.use_backend("libsodium"):
        assert batch_verify_excess(checks) == [1]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    bad=st.lists(st.sampled_from(sorted(TAMPERINGS)) | st.none(), min_size=1, max_size=9),
)
def test_a_batch_answers_as_the_single_check_does(seed: int, bad: list[str | None]) -> None:
    rng = random.Random(seed)
    checks = [valid_check(rng) for _ in bad]
    checks = [c if how is None else TAMPERINGS[how](c) for c, how in zip(checks, bad, strict=True)]
    assert batch_verify_excess(checks) == single_answers(checks)


def test_deferred_checks_answer_true_are_collected_and_end_with_the_block() -> None:
    rng = random.Random(3)
    good, bad, known_bad = (valid_check(rng) for _ in range(3))
    bad = TAMPERINGS["s + 1"](bad)
    known_bad = TAMPERINGS["another message"](known_bad)
    assert batch_verify_excess([known_bad]) == [0]
    with deferring_excess_checks() as deferred:
        assert verify_excess(bad.excess, bad.message, bad.proof) is True
        assert verify_excess(good.excess, good.message, good.proof) is True
        assert verify_excess(known_bad.excess, known_bad.message, known_bad.proof) is False
    assert deferred == [bad, good]
    assert remembered_excess_answer(bad) is None  # deferred is not answered
    assert verify_excess(bad.excess, bad.message, bad.proof) is False
    with pytest.raises(ZeroDivisionError), deferring_excess_checks():
        raise ZeroDivisionError
    assert verify_excess(good.excess, good.message, good.proof) is True
    other = TAMPERINGS["s + 1"](valid_check(rng))
    assert verify_excess(other.excess, other.message, other.proof) is False  # not deferred now


def test_batch_weights_are_nonzero_128_bit_and_fresh() -> None:
    weights = excess_batch.batch_weights(64)
    assert len(weights) == 64
    assert all(0 < w < 1 << excess_batch.WEIGHT_BITS for w in weights)
    assert len(set(weights)) == 64  # a collision has probability about 2^-116
    assert weights != excess_batch.batch_weights(64)


def test_a_zero_draw_is_replaced_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # A zero weight would drop its proof from the sum, so a bad proof would pass.
    monkeypatch.setattr(secrets, "token_bytes", bytes)  # all zeros
    weights = excess_batch.batch_weights(3)
    assert all(0 < w < 1 << excess_batch.WEIGHT_BITS for w in weights)
