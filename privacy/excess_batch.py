"""Excess (balance) proofs verified together: one multiscalar check for a batch.

Each proof ``(R_i, s_i)`` of ``E_i = x_i·H`` for message ``m_i`` is valid iff
``s_i·H − c_i·E_i − R_i = 0`` with ``c_i = hash(tag, G, H, E_i, R_i, m_i)``
(``privacy.sigma``). The batch draws fresh random weights ``z_i`` of 128 bits
after the proofs are fixed and checks the one sum

    (Σ z_i·s_i)·H − Σ (z_i·c_i)·E_i − Σ z_i·R_i = 0.

Valid proofs make every term vanish. If some proof is invalid, its term
``z_i·D_i`` (``D_i ≠ 0``, a point of prime order ℓ) cancels the rest for at
most one value of ``z_i`` mod ℓ given the others, so the check passes with
probability at most 1/(2^128 − 1): the argument of batched Schnorr and Bulletproofs
verification. ``H`` has a fixed table, so a proof costs two multiscalar terms
(``E_i``, ``R_i``) instead of the 2-term product of its own check:
``python -m privacy bench`` measured 47 µs a proof in a batch of 16 against
105 µs alone (native backend, docs/performance.md).

When the sum is not zero, or a proof is malformed or a point does not
decode, each proof of the batch is checked alone to name the bad ones: a
batch with a bad proof costs its good ones one more verification each, which
bounds what a flood of bad proofs costs at twice the single checks.

Every answer is remembered (``privacy.sigma.remember_excess_answer``), so the
rules' ``verify_excess`` of the same bytes later returns it without a check.
Public data only: the variable-time multiscalar backend is fine.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from privacy import group, msm
from privacy.sigma import (
    BLINDING_BASE,
    EXCESS_TAG,
    PROOF_BYTES,
    ExcessCheck,
    check_excess,
    remember_excess_answer,
    remembered_excess_answer,
    schnorr_challenge,
)

WEIGHT_BITS = 128
BATCH_MIN = 4
"""Fewer candidates than this are checked one by one: the batch's multiscalar call
costs more than the single checks below about four proofs. With the libsodium
backend (one multiplication a term) a batch never pays, so it checks one by one
too (``python -m privacy bench``: 171 µs a proof in a batch of 16, 158 alone)."""


def batch_verify_excess(checks: Sequence[ExcessCheck]) -> list[int]:
    """Indices of ``checks`` whose proof does not verify; every answer is remembered."""
    answers = [remembered_excess_answer(check) for check in checks]
    pending = [index for index, answer in enumerate(answers) if answer is None]
    batched = len(pending) >= BATCH_MIN and msm.backend_name() == "native"
    if batched and _batch_holds([checks[index] for index in pending]):
        for index in pending:
            answers[index] = True
    else:
        for index in pending:
            check = checks[index]
            answers[index] = check_excess(check.excess, check.message, check.proof)
    bad = []
    for index, check in enumerate(checks):
        answer = answers[index] is True  # every check was answered above
        remember_excess_answer(check, answer)
        if not answer:
            bad.append(index)
    return bad


def _batch_holds(checks: Sequence[ExcessCheck]) -> bool:
    """True iff the weighted sum of the module docstring vanishes. False for any
    malformed proof too (what ``check_excess`` refuses before its multiplication;
    point validity is the multiscalar call's): the single checks then name it."""
    fixed_scalar = 0
    scalars: list[int] = []
    points: list[bytes] = []
    for check, weight in zip(checks, batch_weights(len(checks)), strict=True):
        excess, message, proof = check.excess, check.message, check.proof
        if not (type(excess) is bytes and type(message) is bytes and type(proof) is bytes):
            return False
        if len(excess) != group.POINT_BYTES or excess == group.IDENTITY:
            return False
        r_point = proof[:32]
        if len(proof) != PROOF_BYTES or r_point == group.IDENTITY:
            return False
        s = int.from_bytes(proof[32:], "little")
        if s >= group.ORDER:
            return False
        challenge = schnorr_challenge(EXCESS_TAG, (excess,), r_point, message)
        fixed_scalar += weight * s
        scalars += [-weight * challenge, -weight]
        points += [excess, r_point]
    return _sum_vanishes(scalars, points, fixed_scalar)


def batch_weights(count: int) -> list[int]:
    """``count`` independent weights, uniform in [1, 2^128 − 1], from one read of the
    OS CSPRNG: one ``getrandom`` a batch instead of one a proof. A draw of 0 (it
    would drop its proof from the sum) is replaced by a fresh uniform nonzero one,
    which keeps every weight uniform on the nonzero values."""
    size = WEIGHT_BITS // 8
    pool = secrets.token_bytes(size * count)
    weights = [int.from_bytes(pool[i : i + size], "little") for i in range(0, len(pool), size)]
    return [w if w else secrets.randbelow((1 << WEIGHT_BITS) - 1) + 1 for w in weights]


def _sum_vanishes(scalars: list[int], points: list[bytes], fixed_scalar: int) -> bool:
    try:
        total = msm.multiscalar_mul(
            scalars, points, fixed=BLINDING_BASE, fixed_scalars=[fixed_scalar]
        )
    except group.GroupError:
        return False  # a point that does not decode: the single checks name it
    return total == group.IDENTITY
