"""``verify_excess`` remembers its answer for the very same bytes (issue 9, node CPU per
transfer): a node checks each transfer's balance at admission, at execution and when it
rebuilds its mempool, and each check cost a multiscalar multiplication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from privacy import group, msm, sigma
from privacy.generators import PEDERSEN_H
from privacy.group import random_scalar


@pytest.fixture
def msm_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    calls: list[int] = []
    original = msm.multiscalar_mul

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(msm, "multiscalar_mul", counted)  # sigma calls it through the module
    yield calls


def test_the_same_excess_proof_is_verified_once(msm_calls: list[int]) -> None:
    x = random_scalar()
    excess = group.mul(x, PEDERSEN_H)
    message = random_scalar().to_bytes(32, "little")
    proof = sigma.prove_excess(x, message)
    answers = [sigma.verify_excess(excess, message, proof) for _ in range(3)]
    if answers != [True, True, True] or len(msm_calls) != 1:
        raise AssertionError(f"answers {answers}, {len(msm_calls)} multiscalar calls")


def test_a_remembered_proof_is_still_refused_for_another_message_or_excess(
    msm_calls: list[int],
) -> None:
    x = random_scalar()
    excess = group.mul(x, PEDERSEN_H)
    message = random_scalar().to_bytes(32, "little")
    proof = sigma.prove_excess(x, message)
    other_excess = group.mul(random_scalar(), PEDERSEN_H)
    answers = [
        sigma.verify_excess(excess, message, proof),
        sigma.verify_excess(excess, message + b"!", proof),
        sigma.verify_excess(other_excess, message, proof),
        sigma.verify_excess(excess, message + b"!", proof),  # a remembered refusal
        sigma.verify_excess(excess, message, proof[:32] + bytes(32)),
    ]
    if answers != [True, False, False, False, False] or len(msm_calls) != 4:
        raise AssertionError(f"answers {answers}, {len(msm_calls)} multiscalar calls")


def test_non_bytes_input_is_refused_without_being_remembered() -> None:
    x = random_scalar()
    excess = group.mul(x, PEDERSEN_H)
    proof = sigma.prove_excess(x, b"m")
    refused = [
        sigma.verify_excess(bytearray(excess), b"m", proof),  # type: ignore[arg-type]
        sigma.verify_excess(excess, "m", proof),  # type: ignore[arg-type]
        sigma.verify_excess(excess, b"m", list(proof)),  # type: ignore[arg-type]
    ]
    if any(refused) or not sigma.verify_excess(excess, b"m", proof):
        raise AssertionError(f"refused {refused}")
