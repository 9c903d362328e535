"""node.commit_rate.CommitRate: txs per second over a sliding window."""

from __future__ import annotations

import pytest

from node.commit_rate import CommitRate


def test_the_rate_counts_the_blocks_of_the_window_over_the_whole_window() -> None:
    rate = CommitRate(window_ms=4_000)
    assert rate.per_s(0) == 0
    rate.record(100, 1_000)
    rate.record(300, 3_000)
    rate.record(0, 3_500)  # an empty block changes nothing
    assert rate.per_s(4_000) == 100
    assert rate.per_s(5_000) == 75  # the block at 1,000 ms left the window
    assert rate.per_s(7_000) == 0


def test_a_fresh_rate_divides_by_the_busy_time_so_far_but_by_a_second_at_least() -> None:
    """Divided by the whole window it read a fifth of the rate one second in, and a
    fresh devnet under full load was held to the backlog's floor for two seconds."""
    rate = CommitRate(window_ms=5_000)
    assert rate.per_s(0) == 0
    rate.record(70, 50)
    assert rate.per_s(50) == 70  # not 1,400/s: 50 ms of blocks is no measure of a second
    for now_ms in range(100, 2_001, 50):
        rate.record(70, now_ms)
    assert rate.per_s(2_000) == 40 * 70 / 2  # 1,400/s over the two busy seconds
    for now_ms in range(2_050, 6_001, 50):
        rate.record(70, now_ms)
    assert rate.per_s(6_000) == 1_400  # a whole window: 100 blocks of 70 in 5 s


@pytest.mark.parametrize("window_ms", [0, -1, True, 1.5])
def test_a_window_must_be_a_positive_int(window_ms: object) -> None:
    with pytest.raises(ValueError, match="window_ms"):
        CommitRate(window_ms=window_ms)  # type: ignore[arg-type]


def test_a_quiet_spell_does_not_age_the_window() -> None:
    """Wall time aged it: five quiet seconds took the rate to zero, and the next burst
    was held to the mempool's floor while the rate climbed back (docs/performance.md,
    "Busy answers at 1,600 attests/s")."""
    rate = CommitRate(window_ms=4_000)
    rate.per_s(0)
    rate.record(400, 4_000)
    assert rate.per_s(4_000) == 100
    rate.observe(4_000, busy=False)  # that block emptied the mempool
    assert rate.per_s(60_000) == 100  # a minute later: still what it last measured
    rate.observe(60_000, busy=True)  # a tx came
    assert rate.per_s(63_000) == 100  # three seconds busy: the block is still in the window
    assert rate.per_s(64_000) == 0  # four: it left


def test_time_that_runs_back_counts_for_nothing() -> None:
    rate = CommitRate(window_ms=1_000)
    rate.record(100, 5_000)
    rate.record(100, 4_000)  # a clock stepped back: neither block ages the other
    assert rate.per_s(5_500) == 200
    assert rate.per_s(6_000) == 0
