"""``python -m privacy``: prove and verify range proofs from the shell, and run the benchmarks.

Command-line contract (issue 3):

- ``prove --bits N --values v1,v2[,...] [--blindings hex,...] [--transcript merlin|default]
  [--label TEXT]`` prints one JSON object ``{"bits", "transcript", "label",
  "commitments": [hex], "proof": hex}`` on stdout.
- ``verify`` reads that object on stdin and exits 0 printing ``{"valid": true}``,
  1 printing ``{"valid": false, "reason": ...}`` for a well-formed proof that
  does not verify, or 2 with a message on stderr for malformed input (bad JSON,
  missing or unknown field, wrong type, bad hex, wrong length, invalid point,
  unknown transcript, unsupported size).
- ``bench [--json]`` runs ``privacy.bench``.

Blindings are canonical 32-byte little-endian scalars in hex; without
``--blindings`` they are drawn from the OS CSPRNG. With ``merlin`` the label is
the Merlin transcript label, as in dalek's ``Transcript::new(label)``; the
default label is ``veil/rangeproof/v1`` for both transcripts.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

import click

from privacy import group
from privacy.bench import format_report, run_benchmarks
from privacy.rangeproof import (
    DEFAULT_LABEL,
    RangeProofError,
    RangeStatement,
    prove_range,
    verify_range,
)

TRANSCRIPTS = ("default", "merlin")
FIELDS = ("bits", "transcript", "label", "commitments", "proof")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


class MalformedInput(click.ClickException):
    """Input that is not a well-formed statement: exit status 2, message on stderr."""

    exit_code = 2

    def format_message(self) -> str:
        return f"malformed input: {self.message}"


def _hex_bytes(text: object, what: str, length: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise MalformedInput(f"{what} must be a hex string")
    if not _HEX.fullmatch(text):
        raise MalformedInput(f"{what} is not valid hex (even number of 0-9a-f digits)")
    data = bytes.fromhex(text)
    if length is not None and len(data) != length:
        raise MalformedInput(f"{what} must be {length} bytes, got {len(data)}")
    return data


def _parse_values(text: str) -> list[int]:
    values = []
    for raw in text.split(","):
        item = raw.strip()
        if not re.fullmatch(r"-?[0-9]+", item):
            raise click.BadParameter(f"{item!r} is not a decimal integer", param_hint="--values")
        try:
            values.append(int(item))
        except ValueError:  # Python's limit on digits in int(str)
            raise click.BadParameter(
                f"a value of {len(item)} digits is far out of range", param_hint="--values"
            ) from None
    return values


def _label_bytes(label: str) -> bytes:
    """UTF-8 of a label; a lone surrogate (from JSON or undecodable argv) is refused."""
    try:
        return label.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInput("label is not valid UTF-8 text") from None


def _parse_blindings(text: str | None, count: int) -> list[int]:
    if text is None:
        return [group.random_scalar() for _ in range(count)]
    items = [item.strip() for item in text.split(",")]
    if len(items) != count:
        raise click.BadParameter(
            f"{len(items)} blindings for {count} values", param_hint="--blindings"
        )
    blindings = []
    for index, item in enumerate(items):
        try:
            raw = _hex_bytes(item, f"blinding {index}", group.SCALAR_BYTES)
            blindings.append(group.scalar_from_bytes(raw))
        except (MalformedInput, group.GroupError) as err:
            message = err.message if isinstance(err, MalformedInput) else str(err)
            raise click.BadParameter(message, param_hint="--blindings") from None
    return blindings


def _emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, separators=(", ", ": ")))


@click.group(help="Veil privacy tools: Bulletproofs range proofs over Ristretto255.")
def cli() -> None:
    pass


@cli.command()
@click.option("--bits", type=int, required=True, help="Range size n: values in [0, 2^n).")
@click.option("--values", "values_text", required=True, help="Comma-separated values.")
@click.option(
    "--blindings", "blindings_text", default=None, help="Comma-separated 32-byte LE scalar hex."
)
@click.option("--transcript", type=click.Choice(TRANSCRIPTS), default="default", show_default=True)
@click.option("--label", default=DEFAULT_LABEL.decode(), show_default=True)
def prove(
    bits: int, values_text: str, blindings_text: str | None, transcript: str, label: str
) -> None:
    """Make an aggregated range proof for the values and print it as JSON."""
    values = _parse_values(values_text)
    blindings = _parse_blindings(blindings_text, len(values))
    label_bytes = _label_bytes(label)
    try:
        proof, commitments = prove_range(
            values, blindings, bits, transcript=transcript, label=label_bytes
        )
    except RangeProofError as err:
        raise click.UsageError(f"cannot prove: {err}") from None
    _emit(
        {
            "bits": bits,
            "transcript": transcript,
            "label": label,
            "commitments": [c.hex() for c in commitments],
            "proof": proof.hex(),
        }
    )


def parse_statement(text: str) -> RangeStatement:
    """The statement in ``verify``'s JSON input; raises ``MalformedInput`` (exit 2)."""
    try:
        obj = json.loads(text)
    except ValueError as err:  # JSONDecodeError, or an integer beyond Python's digit limit
        raise MalformedInput(f"cannot parse JSON: {err}") from None
    except RecursionError:
        raise MalformedInput("cannot parse JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise MalformedInput("expected one JSON object")
    missing = [name for name in FIELDS if name not in obj]
    if missing:
        raise MalformedInput(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise MalformedInput(f"unknown field(s): {', '.join(unknown)}")
    bits = obj["bits"]
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise MalformedInput("bits must be an integer")
    transcript = obj["transcript"]
    if transcript not in TRANSCRIPTS:
        raise MalformedInput(f"unknown transcript {transcript!r} (expected merlin or default)")
    label = obj["label"]
    if not isinstance(label, str):
        raise MalformedInput("label must be a string")
    raw_commitments = obj["commitments"]
    if not isinstance(raw_commitments, list) or not raw_commitments:
        raise MalformedInput("commitments must be a non-empty list of hex strings")
    commitments = []
    for index, item in enumerate(raw_commitments):
        data = _hex_bytes(item, f"commitment {index}", group.POINT_BYTES)
        if not group.is_valid_point(data):
            raise MalformedInput(f"commitment {index} is not a canonical Ristretto255 point")
        commitments.append(data)
    proof = _hex_bytes(obj["proof"], "proof")
    return RangeStatement(
        tuple(commitments), proof, bits, transcript=transcript, label=_label_bytes(label)
    )


def _verify_exit(statement: RangeStatement) -> NoReturn:
    try:
        verify_range(statement)
    except RangeProofError as err:
        if err.reason == "INVALID":
            _emit({"valid": False, "reason": str(err)})
            sys.exit(1)
        raise MalformedInput(str(err)) from None
    _emit({"valid": True})
    sys.exit(0)


@cli.command()
def verify() -> None:
    """Verify the JSON proof object read on stdin (exit 0 valid, 1 invalid, 2 malformed)."""
    try:
        text = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("input is not UTF-8") from None
    _verify_exit(parse_statement(text))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1, 4096))
def bench(as_json: bool, runs: int, batch_size: int) -> None:
    """Measure proving, verification and batch verification (medians of several runs)."""
    report = run_benchmarks(runs=runs, batch_size=batch_size, progress=True)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def main() -> None:
    cli(prog_name="python -m privacy")
