"""A genesis file that is not valid JSON is a ``GenesisError``, whatever breaks the parser."""

from __future__ import annotations

import pytest

from ledger.genesis import GenesisError, genesis_from_json


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,  # nesting deeper than the JSON parser recurses
        '{"kind": "veil-genesis", "version": ' + "9" * 5000 + "}",  # int above the digit limit
        '{"kind": "veil-genesis"',
    ],
)
def test_unparsable_genesis_json_is_a_genesis_error(text: str) -> None:
    with pytest.raises(GenesisError):
        genesis_from_json(text)
