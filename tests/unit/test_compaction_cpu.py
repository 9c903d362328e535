"""``benchmarks.compaction_cpu`` writes what the store's layout writes, and runs."""

from __future__ import annotations

import pytest

from benchmarks import compaction_cpu
from ledger.state_root import decode_node, stores_interior
from ledger.store import NODE_PREFIX


def test_the_batches_carry_the_tree_records_of_the_current_layout() -> None:
    batches = compaction_cpu.attest_batches(blocks=5, txs=30, accounts=8, seed=2)
    assert len(batches) == 5
    tree = [(k, v) for batch in batches for k, v in batch if k[:1] == NODE_PREFIX]
    assert tree
    for key, record in tree:
        if record is not None and not stores_interior(int.from_bytes(key[1:], "big")):
            assert not isinstance(decode_node(record), bytes), "unstored-depth interior record"


def test_a_small_run_prints_each_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert compaction_cpu.main(["--blocks", "20", "--txs", "10", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "round 1 none" in out and "round 1 snappy" in out and "compaction" in out


def test_an_unknown_compression_is_refused() -> None:
    with pytest.raises(SystemExit):
        compaction_cpu.main(["--compression", "zstd"])
