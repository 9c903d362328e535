"""``python -m privacy`` as a real subprocess: the issue's command-line contract.

prove prints one JSON object; verify exits 0 (valid), 1 (well-formed but invalid)
or 2 (malformed input, message on stderr).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from privacy import bench, group, msm
from privacy.pedersen import commit

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors" / "dalek_rangeproof_v1.txt"
DALEK_LABEL = "Deserialize-And-Verify Test"


def run(*args: str, stdin: str | bytes = b"") -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "privacy", *args],
        input=data,
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def prove(*args: str) -> dict[str, Any]:
    done = run("prove", *args)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    obj: dict[str, Any] = json.loads(lines[0])
    return obj


def verify(obj: dict[str, Any] | str) -> tuple[int, dict[str, Any] | None, str]:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    done = run("verify", stdin=text)
    out = done.stdout.decode().strip()
    return done.returncode, (json.loads(out) if out else None), done.stderr.decode()


@pytest.fixture(scope="module")
def default_proof() -> dict[str, Any]:
    return prove("--bits", "64", "--values", "0,18446744073709551615")


def test_round_trip_default_transcript(default_proof: dict[str, Any]) -> None:
    assert set(default_proof) == {"bits", "transcript", "label", "commitments", "proof"}
    assert default_proof["bits"] == 64 and default_proof["transcript"] == "default"
    assert default_proof["label"] == "veil/rangeproof/v1"
    assert len(default_proof["commitments"]) == 2
    # dalek layout: 32·(9 + 2·log2(n·m)) bytes
    assert len(bytes.fromhex(default_proof["proof"])) == 32 * (9 + 2 * 7)
    assert verify(default_proof) == (0, {"valid": True}, "")


def test_round_trip_merlin_with_label_and_given_blindings() -> None:
    blindings = [group.random_scalar() for _ in range(4)]
    values = [0, 1, 200, 255]
    obj = prove(
        "--bits",
        "8",
        "--values",
        ",".join(map(str, values)),
        "--blindings",
        ",".join(group.scalar_to_bytes(b).hex() for b in blindings),
        "--transcript",
        "merlin",
        "--label",
        "my test label",
    )
    assert obj["transcript"] == "merlin" and obj["label"] == "my test label"
    assert obj["commitments"] == [
        commit(v, b).hex() for v, b in zip(values, blindings, strict=True)
    ]
    assert verify(obj)[:2] == (0, {"valid": True})
    # Under another label or transcript it is well-formed but invalid.
    for change in ({"label": "other"}, {"transcript": "default"}):
        code, out, _ = verify({**obj, **change})
        assert code == 1 and out is not None and out["valid"] is False and out["reason"]


def test_tampered_proof_is_invalid_exit_1(default_proof: dict[str, Any]) -> None:
    proof = bytearray.fromhex(default_proof["proof"])
    proof[4 * 32] ^= 0x01  # low byte of t_x: still a canonical scalar
    code, out, _ = verify({**default_proof, "proof": proof.hex()})
    assert code == 1 and out is not None and out["valid"] is False and out["reason"]
    swapped = {**default_proof, "commitments": default_proof["commitments"][::-1]}
    assert verify(swapped)[0] == 1
    other = commit(5, group.random_scalar()).hex()
    assert (
        verify({**default_proof, "commitments": [other, default_proof["commitments"][1]]})[0] == 1
    )


def malformed_cases(good: dict[str, Any]) -> dict[str, str]:
    cases = {
        "not json": "{bits: 64",
        "empty input": "",
        "json array": json.dumps([good]),
        "unknown transcript": json.dumps({**good, "transcript": "sha256"}),
        "unknown field": json.dumps({**good, "extra": 1}),
        "bits not an int": json.dumps({**good, "bits": "64"}),
        "label not a string": json.dumps({**good, "label": 5}),
        "proof bad hex": json.dumps({**good, "proof": "zz" + good["proof"][2:]}),
        "proof odd hex": json.dumps({**good, "proof": good["proof"][:-1]}),
        "proof wrong length": json.dumps({**good, "proof": good["proof"][:-2]}),
        "proof empty": json.dumps({**good, "proof": ""}),
        "commitment bad hex": json.dumps({**good, "commitments": ["xy" * 32]}),
        "commitment wrong length": json.dumps(
            {**good, "commitments": [c[:-2] for c in good["commitments"]]}
        ),
        "commitment not a point": json.dumps(
            {**good, "commitments": ["ff" * 32, good["commitments"][1]]}
        ),
        "commitments not a list": json.dumps({**good, "commitments": good["commitments"][0]}),
        "no commitments": json.dumps({**good, "commitments": []}),
        "unsupported bits": json.dumps({**good, "bits": 7}),
        "huge bits": json.dumps({**good, "bits": 10**30}),
        "bits a float": json.dumps({**good, "bits": 64.0}),
        "unsupported aggregation": json.dumps(
            {**good, "commitments": [*good["commitments"], good["commitments"][0]]}
        ),
        "proof point not canonical": json.dumps({**good, "proof": "ff" * 32 + good["proof"][64:]}),
        "transcript not a string": json.dumps({**good, "transcript": ["merlin"]}),
    }
    for field in ("bits", "transcript", "label", "commitments", "proof"):
        cases[f"missing {field}"] = json.dumps({k: v for k, v in good.items() if k != field})
    return cases


def test_each_malformed_input_class_exits_2(default_proof: dict[str, Any]) -> None:
    for name, text in malformed_cases(default_proof).items():
        code, out, err = verify(text)
        assert code == 2, (name, code, out, err)
        assert out is None and "malformed input" in err and "Traceback" not in err, name
    done = run("verify", stdin=b"\xff\xfe{}")
    assert done.returncode == 2 and b"UTF-8" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--bits", "8", "--values", "256"],
        ["--bits", "8", "--values", "-1"],
        ["--bits", "8", "--values", "1,x"],
        ["--bits", "7", "--values", "1"],
        ["--bits", "8", "--values", "1,2,3"],
        ["--bits", "8", "--values", "1", "--transcript", "sha256"],
        ["--bits", "8", "--values", "1", "--blindings", "00"],
        ["--bits", "8", "--values", "1", "--blindings", "zz" * 32],
        ["--bits", "8", "--values", "1", "--blindings", "ff" * 32],  # ≥ ℓ: non-canonical
        ["--bits", "8", "--values", "1,2", "--blindings", "01" + "00" * 31],
    ],
)
def test_prove_refuses_bad_arguments_with_exit_2(args: list[str]) -> None:
    done = run("prove", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == b"" and b"Traceback" not in done.stderr and done.stderr


def dalek_vectors() -> tuple[list[str], dict[tuple[int, int], str]]:
    text = VECTORS.read_text()
    vc = re.findall(r"^vc\[\d\] = ([0-9a-f]{64})", text, flags=re.MULTILINE)
    proofs = {
        (int(n), int(m)): proof
        for n, m, proof in re.findall(
            r"^n=(\d+) m=(\d+) bytes=\d+\nproof = ([0-9a-f]+)", text, flags=re.MULTILINE
        )
    }
    return vc, proofs


@pytest.mark.parametrize(("n", "m"), [(8, 1), (64, 2)])
def test_dalek_vector_verifies_through_the_cli(n: int, m: int) -> None:
    vc, proofs = dalek_vectors()
    assert len(vc) == 8 and len(proofs) == 16
    obj = {
        "bits": n,
        "transcript": "merlin",
        "label": DALEK_LABEL,
        "commitments": vc[:m],
        "proof": proofs[(n, m)],
    }
    assert verify(obj)[:2] == (0, {"valid": True})
    assert verify({**obj, "label": DALEK_LABEL + "!"})[0] == 1


def test_bench_json_runs_small() -> None:
    done = run("bench", "--json", "--runs", "1", "--batch-size", "2")
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["meta"]["batch_size"] == 2 and report["meta"]["memo_bytes_empty_note"] == 123
    for name in ("verify_2x64", "batch_verify_2x64_per_proof", "prove_2x64", "sigma_verify_excess"):
        assert report["results"][name]["median"] > 0
    for name in ("msm_278_per_term", "msm_2818_per_term"):
        assert report["results"][name]["unit"] == "us"
    # Each backend other than the one in use is timed again on every verification step.
    assert report["meta"]["backend"] == msm.backend_name()
    others = set(msm.available_backends()) - {msm.backend_name()}
    assert set(report["compare"]) == others
    for results in report["compare"].values():
        assert set(results) == set(bench.VERIFY_STEPS)


def test_cost_model_counts_the_multiplications_verification_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/privacy.md's term counts are what the verifier pays: one scalar mult per term."""
    from privacy import bench
    from privacy.rangeproof import RangeStatement, batch_verify, verify_range

    counts = {"mul": 0, "mul_base": 0}
    real_mul, real_mul_base = group.mul, group.mul_base

    def counting_mul(scalar: int, point: bytes) -> bytes:
        counts["mul"] += 1
        return real_mul(scalar, point)

    def counting_mul_base(scalar: int) -> bytes:
        counts["mul_base"] += 1
        return real_mul_base(scalar)

    statements = bench._make_statements(4, 64, 2)
    # The libsodium backend pays one multiplication per term; the native one is C.
    with msm.use_backend("libsodium"):
        monkeypatch.setattr(group, "mul", counting_mul)
        monkeypatch.setattr(group, "mul_base", counting_mul_base)
        verify_range(statements[0])
        # Every term but A (scalar 1: an addition) is a multiplication; G uses the fixed-base table.
        assert counts == {"mul": bench.verify_terms(64, 2) - 2, "mul_base": 1}
        assert bench.verify_terms(64, 2) == 278 and bench.verify_terms(64, 1) == 147
        counts.update(mul=0, mul_base=0)
        assert batch_verify([RangeStatement(s.commitments, s.proof, 64) for s in statements]) == []
        # Every A has a random weight now (the implementation may leave one at 1: an addition).
        terms = bench.batch_terms(64, 2, 4)
        assert counts["mul_base"] == 1 and terms - 2 <= counts["mul"] + counts["mul_base"] <= terms
    assert bench.batch_terms(64, 2, 128) == 258 + 128 * 20
