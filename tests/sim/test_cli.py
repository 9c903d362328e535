"""`python -m consensus.sim`: the JSON summary is the last line; failures print a replay."""

from __future__ import annotations

import json
from collections import Counter

import pytest

import consensus.sim.__main__ as cli
from consensus.sim import soak
from consensus.sim.runner import SeedResult
from consensus.sim.scenario import HARSH_COMBINATIONS, PENDING_FIXES


def test_summary_is_the_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--seeds", "3", "--start", "5"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["seeds"] == 3
    assert summary["safety_violations"] == 0 and summary["liveness_failures"] == 0
    assert summary["commits"] > 0
    assert set(summary) >= {"view_changes", "faults_injected", "seconds"}


def test_faults_none_and_a_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--seed", "1", "--faults", "none", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[0])["kinds"] == []
    assert json.loads(lines[-1])["faults_injected"] == {}
    assert cli.main(["--seed", "1", "--faults", "drop,silent_primary"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["faults_injected"]["drop"] > 0
    with pytest.raises(SystemExit):
        cli.main(["--faults", "no_such_fault"])


def test_failure_exits_one_with_seed_and_replay(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(scenario: object, trace: bool = False) -> SeedResult:
        return SeedResult(7, frozenset(), ["agreement: forged"], None, 1, 0, Counter(), 10)

    monkeypatch.setattr(cli, "run_seed", broken)
    assert cli.main(["--seed", "7"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "FAILED seed 7: agreement: forged"
    assert lines[1].startswith("replay: python -m consensus.sim --seed 7 ")
    assert lines[1].endswith("--trace")
    assert json.loads(lines[-1])["safety_violations"] == 1


def test_soak_runs_every_part_and_prints_each_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[list[str]] = []

    def simulate(argv: list[str]) -> int:
        ran.append(argv)
        print(json.dumps({"seeds": int(argv[1])}))
        return 0

    monkeypatch.setattr(soak, "simulate", simulate)
    assert soak.main([]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert ran[:2] == [["--seeds", "5000", "--nodes", "4"], ["--seeds", "5000", "--nodes", "7"]]
    runnable = [k for k in HARSH_COMBINATIONS if not set(k) & set(PENDING_FIXES)]
    assert [run[-1] for run in ran[2:]] == [",".join(k) for k in runnable]
    assert all(run[1] == "200" for run in ran[2:])
    assert len({run[3] for run in ran[2:]}) == len(runnable)  # each its own seed range
    assert sum(line.startswith("{") for line in lines) == len(ran)
    assert lines[-1] == "# soak: 0 failed runs"


def test_soak_fails_when_a_run_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soak, "simulate", lambda argv: 1 if "--nodes" in argv else 0)
    assert soak.main(["--seeds", "1", "--harsh-seeds", "1"]) == 1


def test_soak_calls_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.simulate is cli.main  # type: ignore[attr-defined]


def test_seven_nodes_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--seeds", "1", "--start", "3", "--nodes", "7"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["seeds"] == 1
