"""``LevelDBStore``: the node's ``Store`` on LevelDB (plyvel).

Why this is crash-safe: ``KeyValueStore.commit_block`` builds the whole block
(block, certificate, state changes, tree nodes, indexes and the new tip) as one
list in memory and only then hands it to ``LevelDBBackend.write``, which puts
it in a single ``WriteBatch`` written with ``sync=True``. LevelDB appends a
batch to its log as one record with a checksum and replays only whole records
on open, so after a crash at any point the database holds the previous tip or
the new one, never a mix. The tip record (height, hash, state root) is in the
same batch, and opening checks it against the stored tree and block index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import plyvel

from ledger.state_root import DEFAULT_CACHE_NODES
from ledger.store import Backend, KeyValueStore, StoreError

DEFAULT_LRU_CACHE_BYTES = 32 << 20
DEFAULT_WRITE_BUFFER_BYTES = 16 << 20


class LevelDBBackend(Backend):
    """plyvel with one synced write batch per ``write``."""

    def __init__(
        self,
        path: str | Path,
        *,
        lru_cache_bytes: int = DEFAULT_LRU_CACHE_BYTES,
        write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_BYTES,
    ) -> None:
        try:
            self._db: Any = plyvel.DB(
                str(path),
                create_if_missing=True,
                lru_cache_size=lru_cache_bytes,
                write_buffer_size=write_buffer_bytes,
                compression="snappy",
            )
        except plyvel.Error as exc:
            raise StoreError(f"cannot open LevelDB at {path}: {exc}") from exc

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        if prefix:
            yield from self._db.iterator(prefix=prefix)
        else:
            yield from self._db.iterator()

    def write(self, batch: Sequence[tuple[bytes, bytes | None]]) -> None:
        write_batch = self._db.write_batch(sync=True)
        for key, value in batch:
            if value is None:
                write_batch.delete(key)
            else:
                write_batch.put(key, value)
        write_batch.write()

    def compact(self) -> None:
        self._db.compact_range()

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()


class LevelDBStore(KeyValueStore):
    """A ``Store`` in a LevelDB directory (created if missing)."""

    def __init__(
        self,
        path: str | Path,
        *,
        cache_nodes: int = DEFAULT_CACHE_NODES,
        lru_cache_bytes: int = DEFAULT_LRU_CACHE_BYTES,
    ) -> None:
        self.path = Path(path)
        self.backend = LevelDBBackend(path, lru_cache_bytes=lru_cache_bytes)
        try:
            super().__init__(self.backend, cache_nodes=cache_nodes)
        except BaseException:
            self.backend.close()
            raise

    def __enter__(self) -> LevelDBStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
