"""Packages check invariants with explicit raises; `python -O` strips `assert`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["privacy", "consensus", "ledger", "node", "client", "devnet"]


def test_no_assert_statements_in_packages() -> None:
    offenders = []
    for package in PACKAGES:
        paths = sorted((ROOT / package).rglob("*.py"))
        assert paths, f"no Python files under {package}/: the scan would pass vacuously"
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Assert):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
