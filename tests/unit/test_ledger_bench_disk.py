"""``benchmarks.ledger_bench``'s disk figures: the state history leaves with its window."""

from __future__ import annotations

from benchmarks.ledger_bench import Fixture, bench_disk, bench_disk_past_history


def test_past_the_history_window_a_transfer_keeps_no_undo_bytes() -> None:
    fixture = Fixture(4)
    within = bench_disk(fixture)
    past = bench_disk_past_history(fixture, window=3)
    assert past["empty_blocks"] == 4
    # Within the window a transfer also holds its undo and changed-key records
    # (about 380 B); past it they are pruned, and the block itself remains.
    assert past["live_bytes_per_tx"] < within["live_bytes_per_tx"] - 200
    assert past["live_bytes_per_tx"] > within["tx_bytes"]
    assert 0 < past["rewritten_bytes_per_tx"] < within["disk_bytes_per_tx"]
