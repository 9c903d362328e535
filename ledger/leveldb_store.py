"""``LevelDBStore``: the node's ``Store`` on LevelDB (plyvel).

Why this is crash-safe: ``KeyValueStore.commit_block`` builds the whole block
(block, certificate, state changes, tree nodes, indexes and the new tip) as one
list in memory and only then hands it to ``LevelDBBackend.write``, which puts
it in a single ``WriteBatch`` written with ``sync=True``. LevelDB appends a
batch to its log as one record with a checksum and replays only whole records
on open, so after a crash at any point the database holds the previous tip or
the new one, never a mix. The tip record (height, hash, state root) is in the
same batch, and opening checks it against the stored tree and block index.

Why corruption is refused rather than served: a crash tears a write, but a
failing disk flips bits in what was written. LevelDB checksums every log
record and every table block, yet by default it skips a damaged log record
on recovery (leaving a hole in the chain) and returns table blocks without
checking them. So the database is opened with ``paranoid_checks`` (recovery
stops at a damaged record and the open fails) and every read passes
``verify_checksums`` (a damaged block raises instead of being returned).
Snapshots (``LevelDBBackend.snapshot``) are LevelDB's own: a read through
one sees the database as it was when it was taken, whatever is written
later, and LevelDB allows reads from any thread alongside the writer. A
snapshot is released when the last reader drops it.

Every plyvel error leaves this module as a ``StoreError``:
``StoreCorruptError`` for a checksum or format failure, ``StoreIOError`` for
a failed or short read or write, so callers never see a raw plyvel exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import plyvel

from ledger.leveldb_stats import LevelStats, read_level_stats
from ledger.state_history import DEFAULT_STATE_HISTORY_HEIGHTS
from ledger.store import (
    Backend,
    BackendReader,
    BlockClaims,
    KeyValueStore,
    StoreCorruptError,
    StoreError,
    StoreIOError,
    prefix_end,
)

DEFAULT_LRU_CACHE_BYTES = 32 << 20
DEFAULT_WRITE_BUFFER_BYTES = 16 << 20
COMPRESSIONS = ("none", "snappy")
DEFAULT_COMPRESSION = "none"
"""Tables are written uncompressed: most of what a block writes is hashes (tree
nodes, tx ids) that snappy cannot shrink, yet every compaction decompressed and
recompressed them. Under attest load that was half of LevelDB's compaction CPU
for 29 % less disk (docs/performance.md, "LevelDB's compression"). A table's
blocks record their own compression, so a database written either way opens
and reads the same with either setting."""
# A Bloom filter per table (10 bits a key, about 1 % false positives) lets a
# point read skip every table that cannot hold its key instead of searching
# each one's index and block: most reads are of keys absent from most tables
# (an unseen tx id at admission, a fresh state key). Tables written without
# one (an older database) are still read, in full, until compaction rewrites
# them; a database with filters opens the same without them. Integrity: with
# paranoid_checks a filter block is checksummed when its table opens and a
# damaged one is not used (every read then goes to the blocks); a read the
# filter answers "absent" skips the table's data blocks, so damage there is
# refused by the reads of the keys it holds, not by that one.
DEFAULT_BLOOM_FILTER_BITS = 10


def staggered_write_buffer_bytes(base: int, copy: int, copies: int) -> int:
    """The write buffer for copy ``copy`` of ``copies`` stores that write the same
    batches: ``base`` raised by ``copy / (2 * copies)`` of itself, so copy 0 gets
    ``base`` and the last almost 1.5 times it.

    Why: every validator writes the same blocks, so with equal buffers all of them
    flush a memtable, and start the compactions that follow, at the same height
    (their LevelDB ``LOG`` files agree to 0.1 s): every member of a quorum pays
    for it at the same height, and on a shared host (the devnet) the four
    compactions also take the cores at once. With distinct buffers each store
    flushes at its own heights (docs/performance.md, "Flushes staggered across
    the validators")."""
    if base < 1 or not 0 <= copy < copies:
        raise ValueError(f"need base >= 1 and 0 <= copy < copies, got {base}, {copy}, {copies}")
    return base + base * copy // (2 * copies)


def store_error(exc: plyvel.Error, doing: str) -> StoreError:
    """The store's error for a plyvel error: corruption, or a failed read or write."""
    if isinstance(exc, plyvel.CorruptionError):
        return StoreCorruptError(f"{doing}: {exc}")
    return StoreIOError(f"{doing}: {exc}")


def _get(source: Any, key: bytes) -> bytes | None:
    try:
        value: bytes | None = source.get(key, verify_checksums=True)
    except plyvel.Error as exc:
        raise store_error(exc, f"reading key {key[:40]!r}") from exc
    except RuntimeError as exc:  # plyvel: the database or snapshot is closed
        raise StoreIOError(f"reading key {key[:40]!r}: {exc}") from exc
    return value


def _iterate(source: Any, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
    try:
        if start > prefix:
            # plyvel takes a prefix or a range, not both: the prefix as a range.
            yield from source.iterator(start=start, stop=prefix_end(prefix), verify_checksums=True)
        elif prefix:
            yield from source.iterator(prefix=prefix, verify_checksums=True)
        else:
            yield from source.iterator(verify_checksums=True)
    except plyvel.Error as exc:
        raise store_error(exc, f"iterating over prefix {prefix[:40]!r}") from exc
    except RuntimeError as exc:
        raise StoreIOError(f"iterating over prefix {prefix[:40]!r}: {exc}") from exc


class LevelDBSnapshot(BackendReader):
    """Checksummed reads of the database as it was when ``LevelDBBackend.snapshot`` ran."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def get(self, key: bytes) -> bytes | None:
        return _get(self._snapshot, key)

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return _iterate(self._snapshot, prefix, start)


def leveldb_compression(name: str) -> str | None:
    """plyvel's ``compression`` argument for a ``COMPRESSIONS`` name."""
    if name not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {name!r}")
    return None if name == "none" else name


class LevelDBBackend(Backend):
    """plyvel with paranoid checks, checksummed reads and one synced write batch per ``write``."""

    def __init__(
        self,
        path: str | Path,
        *,
        lru_cache_bytes: int = DEFAULT_LRU_CACHE_BYTES,
        write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_BYTES,
        bloom_filter_bits: int = DEFAULT_BLOOM_FILTER_BITS,
        compression: str = DEFAULT_COMPRESSION,
    ) -> None:
        """``bloom_filter_bits=0``: tables written without a filter (as before
        ``DEFAULT_BLOOM_FILTER_BITS``; ``benchmarks.store_reads`` compares the two).
        ``compression``: one of ``COMPRESSIONS``, for the tables written from now on."""
        if isinstance(bloom_filter_bits, bool) or not isinstance(bloom_filter_bits, int):
            raise TypeError(f"bloom_filter_bits must be an int, got {bloom_filter_bits!r}")
        if not 0 <= bloom_filter_bits <= 64:
            raise ValueError(f"bloom_filter_bits must be 0 to 64, got {bloom_filter_bits}")
        filter_option = {"bloom_filter_bits": bloom_filter_bits} if bloom_filter_bits else {}
        codec = leveldb_compression(compression)
        self.compression = compression
        self.write_buffer_bytes = write_buffer_bytes
        try:
            self._db: Any = plyvel.DB(
                str(path),
                create_if_missing=True,
                lru_cache_size=lru_cache_bytes,
                write_buffer_size=write_buffer_bytes,
                compression=codec,
                paranoid_checks=True,
                **filter_option,
            )
        except plyvel.Error as exc:
            raise store_error(exc, f"cannot open LevelDB at {path}") from exc

    def get(self, key: bytes) -> bytes | None:
        return _get(self._db, key)

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return _iterate(self._db, prefix, start)

    def snapshot(self) -> LevelDBSnapshot:
        try:
            return LevelDBSnapshot(self._db.snapshot())
        except (plyvel.Error, RuntimeError) as exc:
            raise StoreIOError(f"taking a snapshot: {exc}") from exc

    def write(self, batch: Sequence[tuple[bytes, bytes | None]], *, sync: bool = True) -> None:
        try:
            # LevelDB appends every batch to one log in order, and a synced append
            # syncs the log: an empty synced batch makes the earlier ones durable.
            write_batch = self._db.write_batch(sync=sync)
            for key, value in batch:
                if value is None:
                    write_batch.delete(key)
                else:
                    write_batch.put(key, value)
            write_batch.write()
        except plyvel.Error as exc:
            raise store_error(exc, f"writing a batch of {len(batch)} changes") from exc

    def level_stats(self) -> tuple[LevelStats, ...]:
        """LevelDB's levels and compaction totals (``ledger.leveldb_stats``)."""
        return read_level_stats(self._db)

    def compact(self) -> None:
        try:
            self._db.compact_range()
        except plyvel.Error as exc:
            raise store_error(exc, "compacting") from exc

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()


class LevelDBStore(KeyValueStore):
    """A ``Store`` in a LevelDB directory (created if missing)."""

    def __init__(
        self,
        path: str | Path,
        *,
        cache_nodes: int | None = None,
        lru_cache_bytes: int = DEFAULT_LRU_CACHE_BYTES,
        block_claims: BlockClaims | None = None,
        history_heights: int = DEFAULT_STATE_HISTORY_HEIGHTS,
        compression: str = DEFAULT_COMPRESSION,
        write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_BYTES,
    ) -> None:
        self.path = Path(path)
        self.backend = LevelDBBackend(
            path,
            lru_cache_bytes=lru_cache_bytes,
            compression=compression,
            write_buffer_bytes=write_buffer_bytes,
        )
        try:
            super().__init__(
                self.backend,
                cache_nodes=cache_nodes,
                block_claims=block_claims,
                history_heights=history_heights,
            )
        except BaseException:
            self.backend.close()
            raise

    def __enter__(self) -> LevelDBStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
