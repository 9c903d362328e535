"""``benchmarks.compaction_cpu`` writes what the store's layout writes, and runs."""

from __future__ import annotations

import pytest

from benchmarks import compaction_cpu
from ledger.state_history import CHANGED_PREFIX, UNDO_PREFIX, decode_changed_keys
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


def test_each_undo_layout_records_the_same_changed_keys() -> None:
    """The store's layout has one ``V`` record a height, the old one a record a key, and
    the height-first one none, with its ``U`` keys beginning with the height."""
    layouts = {
        layout: compaction_cpu.attest_batches(
            blocks=4, txs=5, accounts=4, seed=3, undo_layout=layout
        )
        for layout in compaction_cpu.UNDO_LAYOUTS
    }
    for index in range(4):
        h = (index + 1).to_bytes(8, "big")
        store, per_key, by_height = (layouts[name][index] for name in compaction_cpu.UNDO_LAYOUTS)
        changed = sorted(k[1:-8] for k, _ in store if k[:1] == UNDO_PREFIX)
        assert changed and changed == sorted(k[1:-8] for k, _ in per_key if k[:1] == UNDO_PREFIX)
        assert changed == sorted(k[9:] for k, _ in by_height if k[:1] == UNDO_PREFIX)
        assert all(k[1:9] == h for k, _ in by_height if k[:1] == UNDO_PREFIX)
        [listing] = [v for k, v in store if k[:1] == CHANGED_PREFIX]
        assert listing is not None and sorted(decode_changed_keys(listing)) == changed
        assert sorted(k[9:] for k, _ in per_key if k[:1] == CHANGED_PREFIX) == changed
        assert not any(k[:1] == CHANGED_PREFIX for k, _ in by_height)


@pytest.mark.parametrize("layout", compaction_cpu.UNDO_LAYOUTS)
def test_a_window_deletes_each_heights_undo_records_that_many_heights_later(layout: str) -> None:
    batches = compaction_cpu.attest_batches(
        blocks=5, txs=3, accounts=4, seed=4, undo_layout=layout, window=2
    )
    written = {k for batch in batches for k, v in batch if v is not None and k[:1] in b"UV"}
    deleted = [[k for k, v in batch if v is None and k[:1] in b"UV"] for batch in batches]
    assert deleted[:2] == [[], []]

    def height_of(key: bytes) -> int:
        keyed_undo = layout != "height" and key[:1] == UNDO_PREFIX
        return int.from_bytes(key[-8:] if keyed_undo else key[1:9], "big")

    for height in (1, 2, 3):  # pruned at heights 3, 4, 5
        at = {k for k in written if height_of(k) == height}
        assert set(deleted[height + 1]) == at and at


def test_a_run_compares_the_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--blocks", "12", "--txs", "5", "--rounds", "2", "--compression", "none"]
    assert compaction_cpu.main([*argv, "--undo-layouts", "store,height", "--window", "4"]) == 0
    out = capsys.readouterr().out
    assert "undo log by height, pruned after 4 heights" in out
    for round_ in ("round 1", "round 2"):
        assert f"{round_} none    store" in out and f"{round_} none    height" in out
    with pytest.raises(SystemExit):
        compaction_cpu.main(["--undo-layouts", "value"])
