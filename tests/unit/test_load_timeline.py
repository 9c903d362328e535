"""benchmarks.load_timeline: latency by submission second and the longest commit gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.load_timeline import main, timeline


def committed(submitted: float, latency: float, height: int, node: int = 0) -> dict[str, object]:
    return {
        "status": "committed",
        "submitted_at_s": submitted,
        "latency_s": latency,
        "height": height,
        "node": node,
    }


def stalled_run() -> list[dict[str, object]]:
    """Blocks every 0.1 s, then nothing from 1.95 s to 3.55 s, then a backlog."""
    outcomes = [committed(100 + k / 10, 0.05, 10 + k) for k in range(20)]
    outcomes += [committed(102.1, 1.45, 30, node=1), committed(102.2, 1.35, 30, node=1)]
    outcomes += [committed(103.6, 0.05, 31)]
    outcomes.append({"status": "rejected", "submitted_at_s": 101.0, "reason": "REPLAYED"})
    return outcomes


def test_the_longest_gap_is_the_stall_and_its_second_shows_the_tail() -> None:
    result = timeline(stalled_run(), gaps=2, over_s=1.0)
    assert result.blocks == 22
    longest = result.gaps[0]
    assert longest.after_height == 29
    assert longest.seconds == pytest.approx(1.6)
    assert longest.at_s == pytest.approx(1.95)
    assert result.gaps[1].seconds < 0.2
    by_second = {row.second: row for row in result.seconds}
    assert by_second[0].txs == 10 and by_second[0].over == 0
    assert by_second[2].over == 2 and by_second[2].max_s == pytest.approx(1.45)
    assert by_second[3].txs == 1 and by_second[3].over == 0


def test_latency_by_the_node_a_tx_was_sent_to() -> None:
    result = timeline(stalled_run())
    zero, one = result.nodes
    assert (zero.node, zero.txs, one.node, one.txs) == (0, 21, 1, 2)
    assert zero.p50_s == pytest.approx(0.05) and zero.p99_s == pytest.approx(0.05)
    assert one.p50_s == pytest.approx(1.35) and one.p99_s == pytest.approx(1.45)


def test_a_block_commits_when_its_first_tx_is_seen() -> None:
    result = timeline([committed(10.0, 0.5, 7), committed(10.0, 0.9, 7), committed(10.2, 0.4, 8)])
    (gap,) = result.gaps
    assert gap.after_height == 7 and gap.seconds == pytest.approx(0.1)


def test_no_commits_gives_an_empty_timeline() -> None:
    assert timeline([{"status": "pending", "submitted_at_s": 1.0}]).blocks == 0


def test_a_committed_outcome_without_its_height_is_refused() -> None:
    with pytest.raises(ValueError, match="height"):
        timeline([{"status": "committed", "submitted_at_s": 1.0, "latency_s": 0.2}])
    with pytest.raises(ValueError, match="node"):
        timeline([{"status": "committed", "submitted_at_s": 1.0, "latency_s": 0.2, "height": 3}])


def test_the_command_prints_the_stall_and_refuses_a_file_without_outcomes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "run.json"
    good.write_text(json.dumps({"p99_s": 1.4, "outcomes": stalled_run()}))
    assert main([str(good), "--gaps", "1", "--over", "1"]) == 0
    printed = capsys.readouterr().out
    assert "1.60 s after height 29 (at " in printed
    assert "sent to node 1: 2 txs, p50 1.35 s, p99 1.45 s" in printed
    bad = tmp_path / "summary.json"
    bad.write_text(json.dumps({"p99_s": 1.4}))
    assert main([str(bad)]) == 2
    assert "outcomes" in capsys.readouterr().out
