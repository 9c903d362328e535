"""Adversarial review of ``python -m privacy``: malformed input never escapes as a
traceback with exit status 1 (which the contract reserves for "well-formed but
invalid"); it is exit status 2 with a clear message."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from privacy.cli import cli


def _run(args: list[str], stdin: bytes = b"") -> Result:
    return CliRunner().invoke(cli, args, input=stdin)


def _malformed(result: Result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)


@pytest.fixture(scope="module")
def good() -> dict[str, object]:
    done = _run(["prove", "--bits", "8", "--values", "5"])
    assert done.exit_code == 0, done.output
    obj: dict[str, object] = json.loads(done.stdout)
    return obj


def test_verify_good_and_tampered(good: dict[str, object]) -> None:
    assert _run(["verify"], json.dumps(good).encode()).exit_code == 0
    other = _run(["prove", "--bits", "8", "--values", "6"])
    swapped = {**good, "commitments": json.loads(other.stdout)["commitments"]}
    assert _run(["verify"], json.dumps(swapped).encode()).exit_code == 1


def test_verify_huge_integer_is_malformed(good: dict[str, object]) -> None:
    # Python refuses to parse integers of more than 4300 digits with a plain ValueError.
    text = json.dumps({**good, "bits": 0}).replace('"bits": 0', '"bits": ' + "9" * 5000)
    _malformed(_run(["verify"], text.encode()))
    _malformed(_run(["verify"], ("9" * 5000).encode()))


def test_verify_deeply_nested_json_is_malformed() -> None:
    _malformed(_run(["verify"], b"[" * 100_000 + b"]" * 100_000))


def test_verify_label_with_lone_surrogate_is_malformed(good: dict[str, object]) -> None:
    text = json.dumps({**good, "label": "\ud800"})  # valid JSON, not encodable as UTF-8
    _malformed(_run(["verify"], text.encode()))


def test_prove_huge_value_is_a_clear_usage_error() -> None:
    result = _run(["prove", "--bits", "8", "--values", "9" * 5000])
    _malformed(result)
    assert "--values" in result.output


def test_prove_label_that_is_not_utf8_is_a_usage_error() -> None:
    # An undecodable argv byte arrives as a lone surrogate (surrogateescape).
    _malformed(_run(["prove", "--bits", "8", "--values", "1", "--label", "\udcff"]))
