"""The load report's CPU by thread and the chain store's LevelDB writes: parsed from
what a node exports, averaged over the nodes both scrapes reached."""

from __future__ import annotations

import pytest

from devnet.load.cpu import (
    mean_delta,
    mean_thread_cpu_delta,
    parse_store_written_bytes,
    parse_thread_cpu,
)
from ledger.leveldb_stats import MIB, LevelStats
from node.metrics import NodeMetrics


def test_the_node_exporter_s_text_parses() -> None:
    threads = parse_thread_cpu(NodeMetrics().render().decode())
    assert "MainThread" in threads and threads["MainThread"] >= 0


def test_other_families_are_skipped_and_unparsable_text_reads_as_none() -> None:
    text = "\n".join(
        [
            "# HELP veil_thread_cpu_seconds_total CPU seconds by thread",
            "# TYPE veil_thread_cpu_seconds_total counter",
            'veil_thread_cpu_seconds_total{thread="native"} 1.5',
            "veil_height 7.0",
        ]
    )
    assert parse_thread_cpu(text) == {"native": 1.5}
    assert parse_thread_cpu("veil_height 1\n") == {}
    assert parse_thread_cpu('veil_thread_cpu_seconds_total{thread="x"} nan?\n') == {}


def test_the_mean_is_over_nodes_read_both_times() -> None:
    before = [{"MainThread": 1.0, "native": 0.5}, None, {"MainThread": 2.0}]
    after = [{"MainThread": 3.0, "native": 1.5}, {"MainThread": 9.0}, {"MainThread": 3.0}]
    delta = mean_thread_cpu_delta(before, after)
    assert delta == {"MainThread": pytest.approx(1.5), "native": pytest.approx(0.5)}
    assert mean_thread_cpu_delta([None], [None]) == {}


def test_the_chain_stores_writes_are_summed_over_its_levels_only() -> None:
    """What the node exports (``veil_store_compaction_written_bytes_total`` by store
    and level) read back; the WAL's and a node without the family are apart."""
    metrics = NodeMetrics()
    chain = [LevelStats(0, 1, 0, 0, 0, 8 * MIB), LevelStats(1, 3, 6 * MIB, 2, 20 * MIB, 18 * MIB)]
    wal = [LevelStats(0, 1, 0, 0, 0, 5 * MIB)]
    metrics.export_store_levels({"chain": lambda: chain, "wal": lambda: wal})
    text = metrics.render().decode()
    assert parse_store_written_bytes(text) == 26 * MIB
    assert parse_store_written_bytes(text, "wal") == 5 * MIB
    assert parse_store_written_bytes(NodeMetrics().render().decode()) is None
    chain.clear()  # before the first flush: exported, nothing written yet
    assert parse_store_written_bytes(metrics.render().decode()) == 0
    assert parse_store_written_bytes("veil_store_compaction_written_bytes_total{ nan?\n") is None


def test_the_mean_delta_is_over_nodes_read_both_times() -> None:
    assert mean_delta([1.0, None, 4.0, 2.0], [3.0, 5.0, 8.0, None]) == pytest.approx(3.0)
    assert mean_delta([None], [1.0]) is None
