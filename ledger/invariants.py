"""Always-on invariant checks: ``python -O`` strips ``assert``, so the ledger raises explicitly."""

from __future__ import annotations


class InvariantViolation(RuntimeError):  # noqa: N818 - the name the design uses
    """A local invariant broke: a bug in this node (a caller's misuse), never bad input."""


def invariant(condition: bool, message: str) -> None:
    """Raise ``InvariantViolation`` unless ``condition`` holds."""
    if not condition:
        raise InvariantViolation(message)
