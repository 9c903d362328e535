"""The load report's CPU by thread: parsed from what a node exports, averaged over
the nodes both scrapes reached."""

from __future__ import annotations

import pytest

from devnet.load.cpu import mean_thread_cpu_delta, parse_thread_cpu
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
