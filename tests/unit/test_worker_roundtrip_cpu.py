"""``benchmarks.worker_roundtrip_cpu`` times both hand-offs and their floor, and reports each."""

from __future__ import annotations

import pytest

from benchmarks.worker_roundtrip_cpu import main


def test_both_hand_offs_and_the_floor_run_and_report_cpu_and_wall(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--calls", "5", "--rounds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["SerialWorker", "run_in_executor", "bare"]
    assert all("process CPU" in line and "loop thread" in line for line in lines)


@pytest.mark.parametrize("args", [["--calls", "0"], ["--rounds", "0"]])
def test_a_bad_count_is_refused(args: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(args)
