"""The load report's latencies (``devnet.load.run.settle_outcomes``) keep stuck txs.

The percentiles were taken over committed txs only, so a tx still pending after
the drain vanished from p99 instead of raising it.
"""

from __future__ import annotations

from devnet.load.drive import Ack, DriveStats
from devnet.load.run import settle_outcomes
from devnet.percentile import percentile


def _stats(count: int) -> DriveStats:
    stats = DriveStats()
    for i in range(count):
        tx_id = bytes([i]) * 32
        stats.acked[tx_id] = Ack(tx_id, "attest", 0, submitted_at_s=100.0, acked_at_s=100.01)
    return stats


def test_a_tx_pending_after_the_drain_counts_at_its_lower_bound() -> None:
    stats = _stats(100)
    ids = list(stats.acked)
    for tx_id in ids[:98]:
        stats.committed_at_s[tx_id] = 100.5
    finals = {ids[98]: ("pending", None), ids[99]: ("unknown", "no node answered")}
    settled = settle_outcomes(stats, finals, drained_s=160.0)
    assert settled.uncommitted == 2
    assert len(settled.latencies) == 100
    assert percentile(settled.latencies, 0.99) == 60.0
    assert percentile(settled.latencies, 0.50) == 0.5
    assert [o.status for o in settled.outcomes].count("committed") == 98


def test_rejected_txs_are_outcomes_not_latencies() -> None:
    stats = _stats(3)
    ids = list(stats.acked)
    stats.committed_at_s[ids[0]] = 101.0
    stats.refused["MEMPOOL_FULL"] = 4
    finals = {ids[1]: ("rejected", "REPLAYED"), ids[2]: ("rejected", None)}
    settled = settle_outcomes(stats, finals, drained_s=130.0)
    assert settled.latencies == [1.0]
    assert settled.uncommitted == 0
    assert settled.rejected_by_reason == {"MEMPOOL_FULL": 4, "REPLAYED": 1, "REJECTED": 1}
