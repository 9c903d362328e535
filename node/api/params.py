"""Parsing what a client puts in a path or a query: strict, with a specific error.

Ids are lowercase hex of an exact length (a tx id, block hash or key is 32
bytes, an output id 33); integers are plain decimal within a stated range.
Anything else is ``ApiError`` with ``INVALID_HEX`` or ``INVALID_PARAMETER``,
never an exception that could reach the 500 path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from node.api.errors import ApiCode, ApiError

_HEX: Final = re.compile(r"[0-9a-f]*")
_DECIMAL: Final = re.compile(r"(0|[1-9][0-9]{0,18})")


def parse_hex(text: str, length_bytes: int, what: str) -> bytes:
    """``text`` as exactly ``length_bytes`` bytes of lowercase hex."""
    if len(text) != 2 * length_bytes or not _HEX.fullmatch(text):
        raise ApiError(
            ApiCode.INVALID_HEX, f"{what} must be {2 * length_bytes} lowercase hex characters"
        )
    return bytes.fromhex(text)


def parse_int(text: str, what: str, *, low: int, high: int) -> int:
    """``text`` as a decimal integer in ``[low, high]``."""
    if not _DECIMAL.fullmatch(text):
        raise ApiError(ApiCode.INVALID_PARAMETER, f"{what} must be a decimal integer")
    value = int(text)
    if not low <= value <= high:
        raise ApiError(ApiCode.INVALID_PARAMETER, f"{what} must be in [{low}, {high}]")
    return value


def optional_int(query: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    text = query.get(name)
    return default if text is None else parse_int(text, name, low=low, high=high)


def check_known_params(query: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Refuse query parameters the route does not take (a typo should not pass silently)."""
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ApiError(ApiCode.INVALID_PARAMETER, f"unknown query parameter {unknown[0][:40]!r}")
