"""``outputs_by_owner_page``: a seek into the owner index, on MemoryStore and LevelDBStore.

A page of the API's ``/v1/outputs`` is one call; it must answer what slicing
the owner's whole sorted index would, while reading only the page's entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.leveldb_store import LevelDBStore
from ledger.state import StateDelta
from ledger.store import (
    OWNER_PREFIX,
    BackendReader,
    MemoryBackend,
    MemoryStore,
    Store,
    StoreSnapshot,
)
from tests.store_writes import block_write

# Owners chosen to trip a careless seek: one is a prefix of another, one ends in
# 0xff (its key range's end is found by carrying), one is all 0xff, one is empty.
OWNERS = (b"a", b"ab", b"a\xff", b"b\x00", b"\xff\xff", b"c")
BIG_OWNER = b"big"
BIG_OUTPUTS = 600


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def output_ids(owner: bytes, count: int) -> list[bytes]:
    return sorted(h(f"{owner!r}/{i}") + bytes([i % 256]) for i in range(count))


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = MemoryStore() if request.param == "memory" else LevelDBStore(tmp_path / "db")
    opened.commit_block(block_write(0, h("genesis"), b"genesis", b"", StateDelta(), []))
    changes = [(owner, oid, True) for owner in OWNERS[:-1] for oid in output_ids(owner, 5)]
    changes += [(BIG_OWNER, oid, True) for oid in output_ids(BIG_OWNER, BIG_OUTPUTS)]
    opened.commit_block(block_write(1, h("b1"), b"one", b"", StateDelta(), [], changes))
    yield opened
    opened.close()


class CountingReads:
    """A backend snapshot that counts the owner-index entries its iterators yield."""

    def __init__(self, inner: BackendReader) -> None:
        self.inner = inner
        self.owner_entries = 0

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for item in self.inner.iterate(prefix, start):
            if item[0].startswith(OWNER_PREFIX):
                self.owner_entries += 1
            yield item


def counted_snapshot(store: Store) -> tuple[StoreSnapshot, CountingReads]:
    backend = store.backend  # type: ignore[attr-defined]
    reads = CountingReads(backend.snapshot())
    snapshot = StoreSnapshot(
        reads, store.height(), store.tip_hash(), store.state_root(), store.history_floor()
    )
    return snapshot, reads


def test_every_page_is_the_slice_of_the_sorted_index(store: Store) -> None:
    for owner in (*OWNERS, BIG_OWNER):
        everything = store.outputs_by_owner(owner)
        assert everything == sorted(everything)
        afters: list[bytes | None] = [None, b"", b"\x00", b"\xff" * 40, *everything]
        afters += [oid[:-1] + b"\x00" for oid in everything[:3]]  # not indexed: between ids
        for after in afters:
            rest = [oid for oid in everything if after is None or oid > after]
            for limit in (0, 1, 2, 5, 7, 256, BIG_OUTPUTS + 1):
                page = store.outputs_by_owner_page(owner, after, limit)
                assert page == rest[:limit], (owner, after, limit)
    assert store.outputs_by_owner_page(b"c", None, 10) == []


def test_a_page_reads_only_its_own_entries(store: Store) -> None:
    snapshot, reads = counted_snapshot(store)
    ids = output_ids(BIG_OWNER, BIG_OUTPUTS)
    assert snapshot.outputs_by_owner_page(BIG_OWNER, None, 1) == ids[:1]
    assert reads.owner_entries == 1
    assert snapshot.outputs_by_owner_page(BIG_OWNER, ids[400], 3) == ids[401:404]
    assert reads.owner_entries == 1 + 3
    assert snapshot.outputs_by_owner_page(BIG_OWNER, ids[-1], 3) == []
    assert reads.owner_entries == 1 + 3
    # Before: every page read the owner's whole index.
    snapshot.outputs_by_owner(BIG_OWNER)
    assert reads.owner_entries == 1 + 3 + BIG_OUTPUTS


def test_a_seek_never_crosses_into_the_next_owner(store: Store) -> None:
    for owner in OWNERS:
        ids = store.outputs_by_owner(owner)
        assert store.outputs_by_owner_page(owner, ids[-1] if ids else None, 100) == []


def test_a_negative_limit_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.outputs_by_owner_page(b"a", None, -1)


def read(source: BackendReader, prefix: bytes, start: bytes) -> list[bytes]:
    return [key for key, _ in source.iterate(prefix, start)]


def test_memory_and_leveldb_seek_alike(tmp_path: Path) -> None:
    keys = [b"O" + bytes([a, b]) for a in (0, 1, 0xFE, 0xFF) for b in (0, 1, 0xFF)]
    keys += [b"P", b"N\xff", b"O"]
    memory = MemoryBackend()
    memory.write([(key, b"v") for key in keys])
    disk = LevelDBStore(tmp_path / "db").backend
    disk.write([(key, b"v") for key in keys])
    cases: list[tuple[bytes, bytes]] = [
        (prefix, start)
        for prefix in (b"O", b"O\x01", b"O\xff", b"O\xff\xff", b"N")
        for start in (b"", b"A", b"O", b"O\x01\x00", b"O\x01\x00\x00", b"O\xff\x01", b"Z")
    ]
    try:
        for prefix, start in cases:
            expected = sorted(k for k in keys if k.startswith(prefix) and k >= start)
            assert read(memory, prefix, start) == expected, (prefix, start)
            assert read(disk, prefix, start) == expected, (prefix, start)
    finally:
        disk.close()
