"""The consensus write-ahead log: every ``Persist`` made durable before anything is sent.

Why a log of its own: the replica's records (views, own votes, prepared
certificates, stable checkpoints) change many times per block, while the ledger
store changes once per block. Keeping them in their own LevelDB directory lets
each be synced on its own schedule and compacted without touching the chain.

Layout: key ``b"r" + u64_be(position)`` → ``consensus.wire.encode_record(...)``.
Positions only grow, so iterating the ``r`` prefix yields records in append
order, which is the order ``Replica.restore`` needs.

Durability: ``append`` writes one ``WriteBatch(sync=True)`` for all the records
it is given (the runtime coalesces the Persists of every event it steps as one
group into one call: group commit, ``node/runtime.py``). LevelDB
replays only whole batches after a crash, so the log is always a prefix of what
was appended, cut at a batch boundary; a suffix that never synced was never
acted on (the runtime sends only after ``append`` returns).

Failure: when a write fails it is unknown whether the batch reached the disk,
so the log latches: every later ``append`` raises ``WalLatchedError`` and the
node must stop (``ledger/store.py`` latches the same way). Reading a record that
does not decode, or a LevelDB checksum error, raises ``WalCorruptError``: a
replica that forgot a vote could contradict itself, so it must never start on a
damaged log.

Compaction: ``compact(live)`` rewrites the log as ``live(records)`` in one synced
batch (delete every old key, put the survivors at new positions), so a crash
leaves either the old log or the new one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import plyvel

from consensus.persistence import Record
from consensus.wire import WireError, decode_record, encode_record
from ledger.leveldb_stats import LevelStats, read_level_stats
from ledger.leveldb_store import DEFAULT_COMPRESSION, leveldb_compression

RECORD_PREFIX = b"r"
POSITION = struct.Struct(">Q")


class WalError(Exception):
    """The write-ahead log cannot be used; the node must stop."""


class WalCorruptError(WalError):
    """A stored record is damaged or does not decode."""


class WalLatchedError(WalError):
    """An earlier write failed; nothing more may be written or sent."""


def _key(position: int) -> bytes:
    return RECORD_PREFIX + POSITION.pack(position)


class WriteAheadLog:
    """Append-only consensus records in a LevelDB directory (created if missing)."""

    def __init__(self, path: str | Path, *, compression: str = DEFAULT_COMPRESSION) -> None:
        self.path = Path(path)
        codec = leveldb_compression(compression)
        self.compression = compression
        try:
            self._db: Any = plyvel.DB(
                str(path), create_if_missing=True, paranoid_checks=True, compression=codec
            )
        except plyvel.CorruptionError as exc:
            raise WalCorruptError(f"write-ahead log at {path} is corrupt: {exc}") from exc
        except plyvel.Error as exc:
            raise WalError(f"cannot open write-ahead log at {path}: {exc}") from exc
        self._latched_reason: str | None = None
        self._positions: list[int] = []
        self._records: list[Record] = []
        try:
            self._load()
        except BaseException:
            self._db.close()
            raise

    @property
    def latched(self) -> bool:
        return self._latched_reason is not None

    @property
    def records(self) -> tuple[Record, ...]:
        """Every record in append order, as ``Replica.restore`` wants them."""
        return tuple(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def _load(self) -> None:
        try:
            for key, value in self._db.iterator(prefix=RECORD_PREFIX, verify_checksums=True):
                if len(key) != len(RECORD_PREFIX) + POSITION.size:
                    raise WalCorruptError(f"write-ahead log has a malformed key {key.hex()}")
                try:
                    record = decode_record(value)
                except WireError as exc:
                    position = POSITION.unpack(key[len(RECORD_PREFIX) :])[0]
                    raise WalCorruptError(
                        f"write-ahead log record {position} does not decode: {exc}"
                    ) from exc
                self._positions.append(POSITION.unpack(key[len(RECORD_PREFIX) :])[0])
                self._records.append(record)
        except plyvel.Error as exc:
            raise WalCorruptError(f"write-ahead log at {self.path} is unreadable: {exc}") from exc

    def _next_position(self) -> int:
        return self._positions[-1] + 1 if self._positions else 0

    def _write(self, puts: Sequence[tuple[bytes, bytes]], deletes: Sequence[bytes]) -> None:
        if self._latched_reason is not None:
            raise WalLatchedError(f"write-ahead log is latched: {self._latched_reason}")
        try:
            batch = self._db.write_batch(sync=True)
            for key in deletes:
                batch.delete(key)
            for key, value in puts:
                batch.put(key, value)
            batch.write()
        except (plyvel.Error, OSError, RuntimeError) as exc:
            # Unknown whether the batch is on disk: never go on from memory.
            self._latched_reason = f"a synced write failed ({exc})"
            raise WalLatchedError(f"write-ahead log write failed and latched: {exc}") from exc

    def append(self, records: Sequence[Record]) -> None:
        """Make ``records`` durable, in order, in one synced batch."""
        if not records:
            return
        first = self._next_position()
        encoded = [(_key(first + i), encode_record(r)) for i, r in enumerate(records)]
        self._write(encoded, ())
        self._positions.extend(range(first, first + len(records)))
        self._records.extend(records)

    def compact(self, live: Callable[[Sequence[Record]], Sequence[Record]]) -> int:
        """Replace the log with ``live(records)``; returns how many records were dropped.

        ``live`` must be pure (``consensus.persistence.live_records``); the new log
        is written in one synced batch, so a crash keeps the old log or the new one.
        """
        survivors = list(live(tuple(self._records)))
        dropped = len(self._records) - len(survivors)
        if dropped <= 0:
            return 0
        first = self._next_position()
        puts = [(_key(first + i), encode_record(r)) for i, r in enumerate(survivors)]
        self._write(puts, [_key(p) for p in self._positions])
        self._positions = list(range(first, first + len(survivors)))
        self._records = survivors
        return dropped

    def level_stats(self) -> tuple[LevelStats, ...]:
        """LevelDB's levels and compaction totals for the log's own database."""
        return read_level_stats(self._db)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
