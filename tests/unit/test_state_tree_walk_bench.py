"""``benchmarks.state_tree_walk`` runs and reports the cold-cache block."""

from __future__ import annotations

import pytest

from benchmarks import state_tree_walk


def test_a_small_run_prints_both_walks_and_the_cold_block(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert state_tree_walk.main(["--keys", "3000", "--blocks", "3", "--txs", "20"]) == 0
    out = capsys.readouterr().out
    assert "C      compute_update" in out and "Python compute_update" in out
    assert "tree records written a block" in out
    reads = int(out.split("ms CPU, ")[1].split(" record reads")[0])
    assert reads > 20  # a cold tree must read records to place 20 new keys
