"""node.commit_rate.CommitRate: txs per second over a sliding window."""

from __future__ import annotations

import pytest

from node.commit_rate import CommitRate


def test_the_rate_counts_the_blocks_of_the_window_over_the_whole_window() -> None:
    rate = CommitRate(window_ms=4_000)
    assert rate.per_s(0) == 0
    rate.record(100, 1_000)
    assert rate.per_s(1_000) == 25  # not 100/s: one block is no measure of a second
    rate.record(300, 3_000)
    rate.record(0, 3_500)  # an empty block changes nothing
    assert rate.per_s(3_500) == 100
    assert rate.per_s(5_000) == 75  # the block at 1,000 ms left the window
    assert rate.per_s(7_000) == 0


@pytest.mark.parametrize("window_ms", [0, -1, True, 1.5])
def test_a_window_must_be_a_positive_int(window_ms: object) -> None:
    with pytest.raises(ValueError, match="window_ms"):
        CommitRate(window_ms=window_ms)  # type: ignore[arg-type]
