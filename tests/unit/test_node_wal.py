"""node/wal.py: durable, ordered, latched on failure, loud on corruption, atomic compaction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plyvel
import pytest

from consensus.messages import Prepare
from consensus.persistence import Record, ViewRecord, VoteRecord
from node.wal import WalCorruptError, WalLatchedError, WriteAheadLog


def vote(view: int, seq: int) -> VoteRecord:
    return VoteRecord(Prepare(view, seq, bytes([seq % 256]) * 32, 1, b"\x07" * 64))


def test_records_come_back_in_append_order_after_reopen(tmp_path: Path) -> None:
    written: list[Record] = [ViewRecord(0, True), vote(0, 1), vote(0, 2), ViewRecord(1, False)]
    with WriteAheadLog(tmp_path / "wal") as wal:
        wal.append(written[:1])
        wal.append(written[1:])
        wal.append(())
    with WriteAheadLog(tmp_path / "wal") as wal:
        assert wal.records == tuple(written)
        wal.append([vote(1, 3)])
    with WriteAheadLog(tmp_path / "wal") as wal:
        assert wal.records == (*written, vote(1, 3))


def test_compaction_keeps_the_survivors_in_order_and_later_appends_follow(tmp_path: Path) -> None:
    records: list[Record] = [ViewRecord(v, True) for v in range(6)]

    def live(all_records: Sequence[Record]) -> Sequence[Record]:
        return [r for r in all_records if isinstance(r, ViewRecord) and r.view % 2 == 1]

    with WriteAheadLog(tmp_path / "wal") as wal:
        wal.append(records)
        assert wal.compact(live) == 3
        assert wal.compact(live) == 0
        wal.append([ViewRecord(9, False)])
    with WriteAheadLog(tmp_path / "wal") as wal:
        assert wal.records == (
            ViewRecord(1, True),
            ViewRecord(3, True),
            ViewRecord(5, True),
            ViewRecord(9, False),
        )


class FailingBatch:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def put(self, key: bytes, value: bytes) -> None:
        self.inner.put(key, value)

    def delete(self, key: bytes) -> None:
        self.inner.delete(key)

    def write(self) -> None:
        raise plyvel.IOError("No space left on device")


def test_a_failed_write_latches_the_log_for_good(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append([ViewRecord(0, True)])
    real_db = wal._db

    class FailingDB:
        closed = False

        def write_batch(self, sync: bool) -> FailingBatch:
            return FailingBatch(real_db.write_batch(sync=sync))

    wal._db = FailingDB()
    with pytest.raises(WalLatchedError, match="No space left"):
        wal.append([ViewRecord(1, True)])
    wal._db = real_db  # the disk is fine again, but what reached it is unknown
    assert wal.latched
    with pytest.raises(WalLatchedError, match="latched"):
        wal.append([ViewRecord(2, True)])
    with pytest.raises(WalLatchedError):
        wal.compact(lambda _records: ())
    assert wal.records == (ViewRecord(0, True),)
    wal.close()


def test_a_record_that_does_not_decode_refuses_the_open(tmp_path: Path) -> None:
    with WriteAheadLog(tmp_path / "wal") as wal:
        wal.append([ViewRecord(0, True), ViewRecord(1, True)])
    db = plyvel.DB(str(tmp_path / "wal"))
    db.put(b"r" + (1).to_bytes(8, "big"), b"\x92\xa4junk\x90")
    db.close()
    with pytest.raises(WalCorruptError, match="record 1 does not decode"):
        WriteAheadLog(tmp_path / "wal")


def test_a_malformed_key_refuses_the_open(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "wal"), create_if_missing=True)
    db.put(b"rshort", b"")
    db.close()
    with pytest.raises(WalCorruptError, match="malformed key"):
        WriteAheadLog(tmp_path / "wal")


def test_a_flipped_bit_in_the_leveldb_log_refuses_the_open(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    with WriteAheadLog(path) as wal:
        for view in range(40):
            wal.append([vote(view, 1), ViewRecord(view, True)])
    (log_file,) = sorted(path.glob("*.log"))
    data = bytearray(log_file.read_bytes())
    assert len(data) > 2000
    data[len(data) // 2] ^= 0x10
    log_file.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError):
        WriteAheadLog(path)
