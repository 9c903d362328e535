"""dalek-cryptography/bulletproofs deserialize-and-verify vectors through the Merlin transcript.

The vectors file (tests/vectors/dalek_rangeproof_v1.txt, vendored published test data,
see tests/vectors/README.md) holds 16 proofs made by dalek for n ∈ {8, 16, 32, 64},
m ∈ {1, 2, 4, 8} over commitments vc[0..m].
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from privacy.rangeproof import (
    RangeProofError,
    RangeStatement,
    batch_verify,
    parse_proof,
    proof_size,
    verify_range,
)

# Verification runs once per multiscalar backend (tests/conftest.py): both must agree.
pytestmark = pytest.mark.usefixtures("msm_backend")

VECTORS = Path(__file__).resolve().parent / "dalek_rangeproof_v1.txt"
LABEL = b"Deserialize-And-Verify Test"
TEXT = VECTORS.read_text(encoding="utf-8")
COMMITMENTS = [
    bytes.fromhex(h) for h in re.findall(r"^vc\[\d\] = ([0-9a-f]{64})$", TEXT, re.MULTILINE)
]
PROOFS = [
    (int(n), int(m), int(size), bytes.fromhex(h))
    for n, m, size, h in re.findall(
        r"^n=(\d+) m=(\d+) bytes=(\d+)\nproof = ([0-9a-f]+)$", TEXT, re.MULTILINE
    )
]
IDS = [f"n{n}-m{m}" for n, m, _, _ in PROOFS]


def _statement(n: int, m: int, proof: bytes, **changes: object) -> RangeStatement:
    fields: dict[str, object] = {
        "commitments": tuple(COMMITMENTS[:m]),
        "proof": proof,
        "bits": n,
        "transcript": "merlin",
        "label": LABEL,
    }
    fields.update(changes)
    return RangeStatement(**fields)  # type: ignore[arg-type]


def _refused(statement: RangeStatement) -> str:
    with pytest.raises(RangeProofError) as err:
        verify_range(statement)
    return err.value.reason


def test_vector_file_is_complete() -> None:
    assert len(COMMITMENTS) == 8
    assert len(PROOFS) == 16
    assert {(n, m) for n, m, _, _ in PROOFS} == {
        (n, m) for n in (8, 16, 32, 64) for m in (1, 2, 4, 8)
    }
    for n, m, size, proof in PROOFS:
        assert len(proof) == size == proof_size(n, m)


@pytest.mark.parametrize(("n", "m", "size", "proof"), PROOFS, ids=IDS)
def test_dalek_proof_verifies_and_round_trips(n: int, m: int, size: int, proof: bytes) -> None:
    verify_range(_statement(n, m, proof))
    assert parse_proof(proof, n, m).to_bytes() == proof
    assert len(proof) == size


@pytest.mark.parametrize(("n", "m", "size", "proof"), PROOFS, ids=IDS)
def test_dalek_proof_fails_when_tampered(n: int, m: int, size: int, proof: bytes) -> None:
    rounds = (size // 32 - 9) // 2
    # Every section: A, S, T_1, T_2, t_x, t_x_blinding, e_blinding, the first and the
    # last L and R, a and b; the byte inside each 32-byte chunk and the bit vary.
    sections = [0, 1, 2, 3, 4, 5, 6, 7, 8, 7 + 2 * (rounds - 1), 8 + 2 * (rounds - 1)]
    sections += [size // 32 - 2, size // 32 - 1]
    for k, section in enumerate(sections):
        position = 32 * section + (0, 13, 31, 7)[(k + n) % 4]
        tampered = bytearray(proof)
        tampered[position] ^= 1 << ((k + m) % 7)
        assert _refused(_statement(n, m, bytes(tampered))) in {"MALFORMED", "INVALID"}
    for j in sorted({0, m - 1}):
        commitments = list(COMMITMENTS[:m])
        changed = bytearray(commitments[j])
        changed[(17 * j + n) % 32] ^= 0x02
        commitments[j] = bytes(changed)
        statement = _statement(n, m, proof, commitments=tuple(commitments))
        assert _refused(statement) in {"MALFORMED", "INVALID"}


@pytest.mark.parametrize(("n", "m", "size", "proof"), PROOFS, ids=IDS)
def test_dalek_proof_fails_with_wrong_parameters(n: int, m: int, size: int, proof: bytes) -> None:
    assert _refused(_statement(n, m, proof, label=b"Deserialize-And-Verify Tesu")) == "INVALID"
    assert _refused(_statement(n, m, proof, transcript="default")) == "INVALID"
    for other_n in (8, 16, 32, 64):
        if other_n != n:
            assert _refused(_statement(n, m, proof, bits=other_n)) in {"MALFORMED", "INVALID"}
    for other_m in (1, 2, 4, 8):
        if other_m != m:
            statement = _statement(n, m, proof, commitments=tuple(COMMITMENTS[:other_m]))
            assert _refused(statement) in {"MALFORMED", "INVALID"}
    # Same total size N = n·m but a different split: well-formed, must not verify.
    if n > 8 and 2 * m <= 8:
        statement = _statement(n // 2, 2 * m, proof, commitments=tuple(COMMITMENTS[: 2 * m]))
        assert _refused(statement) == "INVALID"
    swapped = list(COMMITMENTS[:m])
    if m > 1:
        swapped[0], swapped[1] = swapped[1], swapped[0]
        assert _refused(_statement(n, m, proof, commitments=tuple(swapped))) == "INVALID"
    assert _refused(_statement(n, m, proof[:-32])) == "MALFORMED"
    assert _refused(_statement(n, m, proof + bytes(32))) == "MALFORMED"


def test_all_dalek_vectors_in_one_batch() -> None:
    statements = [_statement(n, m, proof) for n, m, _, proof in PROOFS]
    assert batch_verify(statements) == []
    bad = list(statements)
    tampered = bytearray(PROOFS[5][3])
    tampered[32 * 4] ^= 1  # t_x of n=16, m=2
    bad[5] = _statement(PROOFS[5][0], PROOFS[5][1], bytes(tampered))
    bad[11] = _statement(PROOFS[11][0], PROOFS[11][1], PROOFS[11][3], label=b"other")
    assert batch_verify(bad) == [5, 11]
