"""The chaos tool's verdicts and numbers on hand-made chains (issue 12)."""

from __future__ import annotations

from pathlib import Path

from devnet.chaos import phase_numbers
from devnet.chaos_checks import NodeChain, fork_heights, lost_commits
from devnet.chaos_load import Ack
from devnet.netns import NetnsLayout, devnet_prefix, layout_for_hosts
from devnet.percentile import percentile


def chain(index: int, hashes: list[bytes], txs: set[bytes]) -> NodeChain:
    return NodeChain(index, tuple(hashes), frozenset(txs), b"root")


def test_a_different_block_at_one_height_is_a_fork_a_shorter_chain_is_not() -> None:
    a = chain(0, [b"h1", b"h2", b"h3"], set())
    behind = chain(1, [b"h1", b"h2"], set())
    forked = chain(2, [b"h1", b"x2", b"h3"], set())
    assert fork_heights([a, behind]) == []
    assert fork_heights([a, behind, forked]) == [2]


def test_a_tx_reported_committed_but_missing_on_one_node_is_lost() -> None:
    full = chain(0, [b"h1"], {b"t1", b"t2"})
    missing = chain(1, [b"h1"], {b"t1"})
    assert lost_commits([full, full], {b"t1"}) == set()
    assert lost_commits([full, missing], set()) == {b"t2"}
    # Seen committed by the watcher, in no node's chain at the end: lost too.
    assert lost_commits([full, full], {b"t9"}) == {b"t9"}


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0], 0.5) == 1.0
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert percentile([5.0], 0.99) == 5.0


def test_phase_numbers_count_commits_inside_the_phase_only() -> None:
    acks = [Ack(b"a", "attest", 0, 1.0), Ack(b"b", "attest", 0, 2.0), Ack(b"c", "transfer", 0, 9.0)]
    seen = {b"a": 1.5, b"b": 12.0}
    numbers = phase_numbers(acks, seen, 0.0, 10.0)
    assert numbers.committed_tx_per_s == 0.1  # only "a" committed inside [0, 10)
    assert numbers.latency_s_p50 == 0.5 and numbers.latency_s_p99 == 10.0


def test_netns_names_fit_linux_interface_names_and_differ_per_directory(tmp_path: Path) -> None:
    layout = NetnsLayout(devnet_prefix(tmp_path / "a"), 12, 10)
    assert all(len(n) <= 15 for n in (layout.bridge, layout.host_veth(9), layout.node_veth(9)))
    assert devnet_prefix(tmp_path / "a") != devnet_prefix(tmp_path / "b")
    hosts = tuple(layout.address(i) for i in range(4))
    assert layout_for_hosts(tmp_path / "a", hosts).subnet_octet == 12
