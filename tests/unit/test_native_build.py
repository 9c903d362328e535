"""``python -m ledger.native.build`` without what it needs says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.native import build


def test_a_missing_openssl_header_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(build, "OPENSSL_HEADER", tmp_path / "absent" / "evp.h")
    monkeypatch.setattr(build, "build", lambda: pytest.fail("must not compile"))
    assert build.main() == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "the pure-Python state tree is in use" in err[0]
    assert "libssl-dev" in err[0]
