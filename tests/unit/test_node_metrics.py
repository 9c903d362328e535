"""``NodeMetrics``: every metric of issue 9, one registry per node."""

from __future__ import annotations

import gc
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger.leveldb_stats import MIB, LevelStats, LevelStatsError
from node.metrics import NodeMetrics

ISSUE_METRICS = {
    "veil_height",
    "veil_view",
    "veil_view_changes",
    "veil_commit_latency_seconds",
    "veil_batch_size_txs",
    "veil_mempool_txs",
    "veil_mempool_bytes",
    "veil_peers_connected",
    "veil_txs_admitted",
    "veil_txs_rejected",
    "veil_proof_verification_seconds",
    "veil_faults",
    "veil_wal_sync_seconds",
    "veil_msm_info",
}


def samples(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_every_metric_of_the_issue_is_exported() -> None:
    metrics = NodeMetrics()
    metrics.set_msm_backend("libsodium")
    names = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert ISSUE_METRICS - names == set()


def test_two_nodes_in_one_process_keep_separate_values() -> None:
    first, second = NodeMetrics(), NodeMetrics()
    first.height.set(7)
    second.height.set(3)
    first.txs_rejected.labels(reason="DOUBLE_SPEND").inc(2)
    first.faults.labels(kind="bad_signature").inc()
    first.commit_latency_seconds.observe(0.3)
    first.set_msm_backend("native")
    one, two = samples(first), samples(second)
    assert one[("veil_height", ())] == 7
    assert two[("veil_height", ())] == 3
    assert one[("veil_txs_rejected_total", (("reason", "DOUBLE_SPEND"),))] == 2
    assert ("veil_txs_rejected_total", (("reason", "DOUBLE_SPEND"),)) not in two
    assert one[("veil_faults_total", (("kind", "bad_signature"),))] == 1
    assert one[("veil_commit_latency_seconds_bucket", (("le", "0.5"),))] == 1
    assert one[("veil_commit_latency_seconds_bucket", (("le", "0.25"),))] == 0
    assert one[("veil_msm_info", (("backend", "native"),))] == 1


def test_the_collector_is_exported_by_generation() -> None:
    """``node.gc_policy`` spaces out full collections: an operator sees it here."""
    before = gc.get_stats()[2]["collections"]
    gc.collect()
    found = samples(NodeMetrics())
    assert found[("python_gc_collections_total", (("generation", "2"),))] >= before + 1
    assert ("python_gc_collections_total", (("generation", "0"),)) in found


def test_counters_kept_elsewhere_are_read_at_each_scrape() -> None:
    """The mempool's rebuilds and the transport's link faults live in their owners:
    each scrape reads what they hold then, by label."""
    metrics = NodeMetrics()
    rebuilds = {"in_place": 3}
    faults = {"NOT_MEMBER": 1}
    metrics.export_mempool_rebuilds(lambda: rebuilds)
    metrics.export_peer_link_faults(lambda: faults)
    assert samples(metrics)[("veil_mempool_rebuilds_total", (("how", "in_place"),))] == 3
    rebuilds.update(in_place=5, in_full=1)
    faults["WRONG_CHAIN"] = 2
    found = samples(metrics)
    assert found[("veil_mempool_rebuilds_total", (("how", "in_place"),))] == 5
    assert found[("veil_mempool_rebuilds_total", (("how", "in_full"),))] == 1
    assert found[("veil_peer_link_faults_total", (("kind", "NOT_MEMBER"),))] == 1
    assert found[("veil_peer_link_faults_total", (("kind", "WRONG_CHAIN"),))] == 2


def test_each_stores_levels_are_read_at_each_scrape_and_a_bad_table_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Chain store and WAL by ``store`` and ``level``; a table that does not parse
    leaves its store out of the scrape (warned once), never the scrape itself."""
    metrics = NodeMetrics()
    chain = [LevelStats(0, 2, 0, 1, 0, 8 * MIB), LevelStats(1, 4, 8 * MIB, 7, 168 * MIB, 160 * MIB)]

    def unreadable() -> list[LevelStats]:
        raise LevelStatsError("no 'Level Files Size(MB) ...' header")

    metrics.export_store_levels({"chain": lambda: chain, "wal": unreadable})
    with caplog.at_level(logging.WARNING, logger="node.metrics"):
        found = samples(metrics)
        samples(metrics)
    level_1 = (("level", "1"), ("store", "chain"))
    assert found[("veil_store_level_files", level_1)] == 4
    assert found[("veil_store_level_bytes", level_1)] == 8 * MIB
    assert found[("veil_store_compaction_seconds_total", level_1)] == 7
    assert found[("veil_store_compaction_read_bytes_total", level_1)] == 168 * MIB
    assert found[("veil_store_compaction_written_bytes_total", level_1)] == 160 * MIB
    level_0 = (("level", "0"), ("store", "chain"))
    assert found[("veil_store_compaction_written_bytes_total", level_0)] == 8 * MIB
    assert not [key for key in found if ("store", "wal") in key[1]]
    assert [r.getMessage() for r in caplog.records] == [
        "the wal store's LevelDB stats are unreadable: no 'Level Files Size(MB) ...' header"
    ]
    chain.append(LevelStats(2, 1, MIB, 0, 0, MIB))
    assert samples(metrics)[("veil_store_level_files", (("level", "2"), ("store", "chain")))] == 1
