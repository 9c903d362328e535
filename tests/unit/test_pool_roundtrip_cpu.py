"""``benchmarks.pool_roundtrip_cpu`` runs both round trips and reports each."""

from __future__ import annotations

import pytest

from benchmarks.pool_roundtrip_cpu import main


def test_both_round_trips_run_and_report_cpu_and_wall(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--calls", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["ProofPool", "bare"]
    assert all("parent CPU" in line and "us/call" in line for line in lines)


def test_a_bad_call_count_is_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--calls", "0"])
