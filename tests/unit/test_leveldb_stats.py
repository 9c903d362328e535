"""``ledger.leveldb_stats``: LevelDB's level table, parsed, from a real database too."""

from __future__ import annotations

import os
from pathlib import Path

import plyvel
import pytest

from ledger.leveldb_stats import (
    MIB,
    LevelStats,
    LevelStatsError,
    parse_leveldb_stats,
    read_level_stats,
)
from ledger.leveldb_store import LevelDBBackend
from node.wal import WriteAheadLog

HEADER = (
    "                               Compactions\n"
    "Level  Files Size(MB) Time(sec) Read(MB) Write(MB)\n"
    "--------------------------------------------------\n"
)
"""LevelDB 1.22's ``leveldb.stats`` heading, as plyvel returns it."""


def test_a_table_from_leveldb_parses_level_by_level() -> None:
    text = HEADER + "  0        2        0         0        0         8\n"
    text += "  1        4        8         7      168       168\n"
    text += "  2        1        0         0        0         0\n"
    assert parse_leveldb_stats(text) == (
        LevelStats(0, 2, 0, 0, 0, 8 * MIB),
        LevelStats(1, 4, 8 * MIB, 7, 168 * MIB, 168 * MIB),
        LevelStats(2, 1, 0, 0, 0, 0),
    )


def test_a_fresh_database_has_no_levels() -> None:
    assert parse_leveldb_stats(HEADER) == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "header"),
        ("Level Files\n  0 1\n", "header"),
        (HEADER + "  0  2  0  0  0\n", "a row of 5 fields"),
        (HEADER + "  0  2  0  0  0  8.5\n", "not whole numbers"),
        (HEADER + "  0  2  0  0  -1  8\n", "negative"),
        (HEADER + "  1  2  0  0  0  8\n  1  2  0  0  0  8\n", "level 1 after level 1"),
    ],
)
def test_a_table_it_does_not_know_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(LevelStatsError, match=problem):
        parse_leveldb_stats(text)


def test_a_real_database_reports_its_flushes_and_compactions(tmp_path: Path) -> None:
    """A 64 KiB write buffer and 4 MiB of random keys: many memtable flushes into
    level 0, and compactions out of it, which the table must show."""
    db = plyvel.DB(
        str(tmp_path / "db"), create_if_missing=True, write_buffer_size=64 << 10, compression=None
    )
    try:
        for _ in range(32):
            with db.write_batch() as batch:
                for _ in range(1024):
                    batch.put(os.urandom(16), os.urandom(112))
        db.compact_range()
        levels = read_level_stats(db)
    finally:
        db.close()
    assert levels and levels[0].level == 0
    assert levels[0].compaction_written_bytes >= 2 * MIB  # the flushes
    assert sum(level.compaction_written_bytes for level in levels[1:]) >= 2 * MIB
    assert sum(level.size_bytes for level in levels) >= 2 * MIB
    assert read_level_stats(db) == ()  # closed: nothing, no error


def test_the_chain_store_and_the_wal_answer_for_their_own_databases(tmp_path: Path) -> None:
    backend = LevelDBBackend(tmp_path / "chain", write_buffer_bytes=64 << 10)
    try:
        backend.write([(os.urandom(16), os.urandom(1024)) for _ in range(2048)])
        backend.compact()
        assert sum(level.size_bytes for level in backend.level_stats()) >= MIB
    finally:
        backend.close()
    assert backend.level_stats() == ()
    with WriteAheadLog(tmp_path / "wal") as wal:
        assert wal.level_stats() == ()  # nothing flushed yet: no level to show
