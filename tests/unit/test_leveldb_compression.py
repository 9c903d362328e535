"""LevelDB's table compression: the setting is applied, either way reads the
other's tables, an unknown name is refused, and node.toml's option reaches both
the chain store and the WAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.persistence import ViewRecord
from ledger.leveldb_store import LevelDBBackend
from node.main import open_chain_store
from node.settings import NodeSection, NodeSettings, parse_node_settings, render_node_toml
from node.wal import WriteAheadLog

# Values snappy shrinks a lot, so the two settings leave tables of clearly different sizes.
ROWS = [(b"k%06d" % i, b"veil " * 200) for i in range(2_000)]


def _table_bytes(path: Path) -> int:
    return sum(table.stat().st_size for table in path.glob("*.ldb"))


def _write_and_compact(path: Path, compression: str) -> None:
    backend = LevelDBBackend(path, compression=compression)
    try:
        backend.write(ROWS, sync=False)
        backend.compact()
    finally:
        backend.close()


def test_the_setting_decides_how_tables_are_written(tmp_path: Path) -> None:
    _write_and_compact(tmp_path / "none", "none")
    _write_and_compact(tmp_path / "snappy", "snappy")
    raw = sum(len(k) + len(v) for k, v in ROWS)
    assert _table_bytes(tmp_path / "none") > raw
    assert _table_bytes(tmp_path / "snappy") < raw // 4


def test_a_database_written_either_way_reads_back_with_the_other(tmp_path: Path) -> None:
    """An existing data directory keeps working after the setting changes."""
    path = tmp_path / "db"
    _write_and_compact(path, "snappy")
    backend = LevelDBBackend(path, compression="none")
    try:
        assert all(backend.get(key) == value for key, value in ROWS)
        backend.write([(b"later", b"veil " * 200)])
        backend.compact()
    finally:
        backend.close()
    backend = LevelDBBackend(path, compression="snappy")
    try:
        assert all(backend.get(key) == value for key, value in ROWS)
        assert backend.get(b"later") == b"veil " * 200
    finally:
        backend.close()


def test_an_unknown_compression_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression must be one of none, snappy, got 'zstd'"):
        LevelDBBackend(tmp_path / "db", compression="zstd")
    with pytest.raises(ValueError, match="compression must be one of"):
        WriteAheadLog(tmp_path / "wal", compression="lz4")
    assert not (tmp_path / "db").exists() and not (tmp_path / "wal").exists()


def test_a_wal_written_compressed_reads_back_uncompressed(tmp_path: Path) -> None:
    records = [ViewRecord(view, view % 2 == 0) for view in range(50)]
    with WriteAheadLog(tmp_path / "wal", compression="snappy") as wal:
        wal.append(records)
    with WriteAheadLog(tmp_path / "wal") as wal:
        assert wal.compression == "none"
        assert wal.records == tuple(records)


def test_node_toml_option_reaches_the_chain_store(tmp_path: Path) -> None:
    written = render_node_toml(
        NodeSettings(node=NodeSection("genesis.json", "key.json", "data"), base_dir=tmp_path)
    )
    assert 'store_compression = "none"' in written
    settings = parse_node_settings(
        written.replace('store_compression = "none"', 'store_compression = "snappy"'), tmp_path
    )
    store = open_chain_store(settings)
    try:
        assert store.backend.compression == "snappy"
    finally:
        store.close()
