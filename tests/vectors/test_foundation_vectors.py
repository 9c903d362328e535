"""Golden bytes for the canonical encoding and signatures. They must never change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.codec import decode_value, encode_value
from ledger.identity import SigningIdentity, verify_signature

GOLDEN = json.loads((Path(__file__).parent / "foundation_golden.json").read_text())


def untag(node: Any) -> Any:
    if node is None:
        return None
    ((kind, raw),) = node.items()
    return {
        "bool": lambda: raw,
        "int": lambda: int(raw),
        "bytes": lambda: bytes.fromhex(raw),
        "str": lambda: raw,
        "array": lambda: tuple(untag(x) for x in raw),
    }[kind]()


def test_known_msgpack_bytes_by_hand() -> None:
    # Checked against the msgpack spec by hand: fixarray(2), fixint 1, bin8 len 2 "ab".
    assert encode_value((1, b"ab")).hex() == "9201c4026162"
    assert encode_value("veil").hex() == "a47665696c"


@pytest.mark.parametrize("case", GOLDEN["codec"], ids=lambda c: c["hex"][:24])
def test_codec_golden(case: dict[str, Any]) -> None:
    value = untag(case["value"])
    assert encode_value(value).hex() == case["hex"]
    assert decode_value(bytes.fromhex(case["hex"])) == value


@pytest.mark.parametrize("case", GOLDEN["signatures"], ids=lambda c: c["domain_tag"])
def test_signature_golden(case: dict[str, str]) -> None:
    identity = SigningIdentity.from_seed(bytes.fromhex(case["seed"]))
    assert identity.public_key.hex() == case["public_key"]
    args = (
        case["domain_tag"].encode(),
        bytes.fromhex(case["chain_id"]),
        bytes.fromhex(case["payload"]),
    )
    assert identity.sign(*args).hex() == case["signature"]
    assert verify_signature(identity.public_key, *args, bytes.fromhex(case["signature"]))


def test_golden_signatures_are_context_bound() -> None:
    first, second = GOLDEN["signatures"][:2]
    assert first["payload"] == second["payload"] and first["domain_tag"] != second["domain_tag"]
    assert first["signature"] != second["signature"]
