"""``benchmarks.store_reads`` builds the two databases alike and reads both."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import store_reads
from ledger.leveldb_store import LevelDBBackend
from ledger.store import TX_PREFIX


def test_both_databases_hold_the_same_records(tmp_path: Path) -> None:
    keys = [TX_PREFIX + bytes([n % 256, n // 256]) * 16 for n in range(600)]
    for bits in (0, 10):
        store_reads.build_synthetic(tmp_path / str(bits), keys, bits)
    contents = []
    for bits in (0, 10):
        backend = LevelDBBackend(tmp_path / str(bits), bloom_filter_bits=bits)
        try:
            contents.append(dict(backend.iterate(TX_PREFIX)))
        finally:
            backend.close()
    assert contents[0] == contents[1] and set(contents[0]) == set(keys)


def test_a_small_run_prints_both_kinds_of_read(capsys: pytest.CaptureFixture[str]) -> None:
    store_reads.run(keys=2_000, reads=200, rounds=1, copy_of=None, seed=3)
    out = capsys.readouterr().out
    assert "absent key: no filter" in out and "present key: no filter" in out
