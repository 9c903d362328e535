"""``python -m benchmarks.load --runs N``: the table of the runs side by side."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import cast

import pytest
from rich.console import Console

from benchmarks.load import RUN_COLUMNS, main, render_runs, run_rows
from devnet.load.run import LoadReport


def _report(
    tx_per_s: float, native_s: float | None, busy: dict[str, int], written_mib: float | None = 61.0
) -> LoadReport:
    threads = {"MainThread": 6.0, "veil-worker": 3.1}
    if native_s is not None:
        threads["native"] = native_s
    fake = SimpleNamespace(
        committed_tx_per_s=tx_per_s,
        p50_s=0.16,
        p99_s=None,
        run_cpu_ms_per_tx=0.293,
        run_cpu_s_by_thread=threads,
        store_written_mib=written_mib,
        busy=busy,
        rejected=2,
    )
    return cast(LoadReport, fake)


def test_one_row_per_run_in_order_with_each_threads_seconds() -> None:
    rows = run_rows(
        [
            _report(1548.23, 0.21, {}),
            _report(1444.9, None, {"RATE_LIMITED": 30, "X": 4}, written_mib=None),
        ]
    )
    assert rows == [
        ("1", "1548.2", "0.160", "-", "0.293", "6.00", "3.10", "0.21", "61", "0", "2"),
        ("2", "1444.9", "0.160", "-", "0.293", "6.00", "3.10", "-", "-", "34", "2"),
    ]
    assert all(len(row) == len(RUN_COLUMNS) for row in rows)


def test_the_table_names_the_number_of_runs_and_fits_80_columns() -> None:
    out = io.StringIO()
    wide = _report(1548.2, 10.25, {"RATE_LIMITED": 12345}, 1234.0)  # as wide as a run gets
    render_runs([wide, _report(2.0, 0.2, {})], Console(file=out, width=80))
    text = out.getvalue()
    assert "2 runs in a row on one devnet" in text
    assert "1548.2" in text and "rejected" in text and "LevelDB" in text
    assert "…" not in text  # no header or value cut short


@pytest.mark.parametrize("runs", ["0", "-1", "x"])
def test_runs_must_be_a_positive_int(runs: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--dir", "d", "--kind", "attest", "--duration", "1", "--runs", runs])
    assert exited.value.code == 2
    assert "--runs" in capsys.readouterr().err
