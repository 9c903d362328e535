"""Each validator's chain store flushes at its own heights (``staggered_write_buffer_bytes``).

Every validator writes the same blocks; with equal write buffers they flushed and
compacted at the same height (docs/performance.md, "Flushes staggered across the
validators")."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.leveldb_store import (
    DEFAULT_WRITE_BUFFER_BYTES,
    LevelDBStore,
    staggered_write_buffer_bytes,
)
from node.main import open_chain_store
from node.settings import NodeSection, NodeSettings

MIB = 1 << 20


def test_four_validators_get_16_18_20_and_22_mib() -> None:
    buffers = [staggered_write_buffer_bytes(16 * MIB, i, 4) for i in range(4)]
    assert buffers == [16 * MIB, 18 * MIB, 20 * MIB, 22 * MIB]


@pytest.mark.parametrize("copies", [1, 4, 7, 10, 100])
def test_every_validator_gets_a_distinct_buffer_below_one_and_a_half_times(copies: int) -> None:
    buffers = [
        staggered_write_buffer_bytes(DEFAULT_WRITE_BUFFER_BYTES, i, copies) for i in range(copies)
    ]
    assert len(set(buffers)) == copies
    assert buffers[0] == DEFAULT_WRITE_BUFFER_BYTES
    assert max(buffers) < DEFAULT_WRITE_BUFFER_BYTES * 3 // 2


@pytest.mark.parametrize(
    ("base", "copy", "copies"), [(0, 0, 4), (MIB, -1, 4), (MIB, 4, 4), (MIB, 0, 0)]
)
def test_out_of_range_arguments_are_refused(base: int, copy: int, copies: int) -> None:
    with pytest.raises(ValueError, match="need base >= 1"):
        staggered_write_buffer_bytes(base, copy, copies)


def _flushes_while_writing(path: Path, write_buffer_bytes: int) -> int:
    with LevelDBStore(path, write_buffer_bytes=write_buffer_bytes) as store:
        assert store.backend.write_buffer_bytes == write_buffer_bytes
        for batch in range(64):  # 64 batches of 16 KiB: 1 MiB in all
            store.backend.write(
                [(b"k%06d" % (batch * 16 + i), bytes([i]) * 1024) for i in range(16)], sync=False
            )
    # LevelDB logs each memtable it writes out as a level-0 table.
    return (path / "LOG").read_text().count(": started")


def test_the_buffer_reaches_leveldb(tmp_path: Path) -> None:
    # A 64 KiB buffer flushes 1 MiB of writes about 16 times; 16 MiB keeps them in
    # memory (and the log) until close.
    assert _flushes_while_writing(tmp_path / "small", 64 << 10) >= 8
    assert _flushes_while_writing(tmp_path / "large", 16 * MIB) == 0


def test_open_chain_store_gives_the_validator_its_buffer(tmp_path: Path) -> None:
    settings = NodeSettings(node=NodeSection("genesis.json", "key.json", "data"), base_dir=tmp_path)
    store = open_chain_store(settings, replica=3, replicas=4)
    try:
        assert store.backend.write_buffer_bytes == 22 * MIB
    finally:
        store.close()
