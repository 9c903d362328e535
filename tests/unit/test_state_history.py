"""``Store.state_at(h)``: the state after block h, for every retained h (ledger.state_history).

A random walk of puts and deletes is committed block by block; after each block
the test keeps a copy of the whole state, and then every retained height must
read back exactly that copy (``get_state`` of every key ever used, and
``iter_state`` under several prefixes), on MemoryStore and LevelDBStore.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import plyvel
import pytest

from ledger.codec import encode_value
from ledger.leveldb_store import LevelDBStore
from ledger.state import state_key
from ledger.state_history import (
    CHANGED_PREFIX,
    UNDO_PREFIX,
    HistoryCorruptError,
    decode_changed_keys,
    encode_changed_keys,
    prune_writes,
    split_undo_key,
    undo_key,
    undo_writes,
)
from ledger.store import (
    SCHEMA_KEY,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    STATE_PREFIX,
    MemoryStore,
    Store,
    StoreCorruptError,
)
from tests.store_writes import block_write

MakeStore = Callable[..., Store]


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


@pytest.fixture(params=["memory", "leveldb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    opened: list[Store] = []

    def make(history_heights: int) -> Store:
        store: Store
        if request.param == "memory":
            store = MemoryStore(history_heights=history_heights)
        else:
            store = LevelDBStore(tmp_path / "db", history_heights=history_heights)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# Keys where one is a prefix of another ("loan:ab" and "loan:abc"), so the undo
# key parsing (state key = raw[1:-8]) is exercised.
KEYS = [state_key(b"loan", bytes([i]) * (1 + i % 3)) for i in range(6)] + [
    state_key(b"borrower", b"B" + bytes([i])) for i in range(4)
]


def commit_random_blocks(
    store: Store, blocks: int, seed: int, *, with_prior: bool = False
) -> list[dict[bytes, bytes]]:
    """Commit ``blocks`` blocks of random puts/deletes; the full state after each.
    ``with_prior``: each write also carries the old values of some keys, changed or
    not, as an executor that read them passes them (``BlockWrite.prior_state``)."""
    rng = random.Random(seed)
    snapshots: list[dict[bytes, bytes]] = []
    current: dict[bytes, bytes] = {}
    for height in range(blocks):
        delta: dict[bytes, bytes | None] = {}
        for key in rng.sample(KEYS, rng.randint(0, 4)):
            if key in current and rng.random() < 0.3:
                delta[key] = None
            else:
                delta[key] = f"v{height}-{rng.random()}".encode()
        write = block_write(height, h(f"block{height}"), b"b", b"c", delta, [h(f"tx{height}")])
        if with_prior:
            read = rng.sample(KEYS, rng.randint(0, len(KEYS)))
            write = dataclasses.replace(write, prior_state={k: current.get(k) for k in read})
        store.commit_block(write)
        for key, value in delta.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        snapshots.append(dict(current))
    return snapshots


def assert_state_is(store: Store, height: int, expected: dict[bytes, bytes]) -> None:
    state = store.state_at(height)
    assert state is not None, f"height {height} should be retained"
    for key in KEYS:
        assert state.get_state(key) == expected.get(key), (height, key)
    for prefix in (b"", b"loan:", b"borrower:", state_key(b"loan", b"\x01")):
        want = sorted((k, v) for k, v in expected.items() if k.startswith(prefix))
        assert list(state.iter_state(prefix)) == want, (height, prefix)


@pytest.mark.parametrize("with_prior", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_retained_height_reads_its_own_state(
    make_store: MakeStore, seed: int, with_prior: bool
) -> None:
    store = make_store(1000)
    snapshots = commit_random_blocks(store, 30, seed, with_prior=with_prior)
    assert store.history_floor() == 0
    for height, expected in enumerate(snapshots):
        assert_state_is(store, height, expected)


def test_heights_below_the_window_are_refused_and_their_entries_pruned(
    make_store: MakeStore,
) -> None:
    store = make_store(5)
    snapshots = commit_random_blocks(store, 20, seed=7)
    assert store.history_floor() == 19 - 5
    assert store.state_at(13) is None
    assert store.state_at(20) is None
    assert store.state_at(-1) is None
    for height in range(14, 20):
        assert_state_is(store, height, snapshots[height])
    backend = store.backend  # type: ignore[attr-defined]
    undo_heights = {int.from_bytes(raw[-8:], "big") for raw, _ in backend.iterate(UNDO_PREFIX)}
    changed_heights = {
        int.from_bytes(raw[1:9], "big") for raw, _ in backend.iterate(CHANGED_PREFIX)
    }
    assert undo_heights <= set(range(15, 20))
    assert changed_heights == undo_heights


def test_no_window_keeps_only_the_tip(make_store: MakeStore) -> None:
    store = make_store(0)
    snapshots = commit_random_blocks(store, 6, seed=3)
    assert store.history_floor() == 5
    assert store.state_at(4) is None
    assert_state_is(store, 5, snapshots[5])
    assert next(store.backend.iterate(UNDO_PREFIX), None) is None  # type: ignore[attr-defined]


def test_the_floor_survives_a_reopen_with_a_larger_window(tmp_path: Path) -> None:
    """Pruned heights stay refused: a wider window must not claim entries that are gone."""
    with LevelDBStore(tmp_path / "db", history_heights=3) as store:
        snapshots = commit_random_blocks(store, 10, seed=5)
    with LevelDBStore(tmp_path / "db", history_heights=100) as store:
        assert store.history_floor() == 6
        assert store.state_at(5) is None
        for height in range(6, 10):
            assert_state_is(store, height, snapshots[height])


def test_an_empty_store_answers_no_height() -> None:
    store = MemoryStore()
    assert store.state_at(0) is None
    assert store.history_floor() == 0


def test_the_undo_log_takes_old_values_the_executor_read_without_reading_them(
    tmp_path: Path,
) -> None:
    """A changed key whose old value ``prior_state`` holds costs the commit no read of
    it; the others are read as before."""
    with LevelDBStore(tmp_path / "db", history_heights=10) as store:
        first = {KEYS[0]: b"a0", KEYS[1]: b"b0"}
        store.commit_block(block_write(0, h("block0"), b"b", b"c", first, [h("tx0")]))
        reads: list[bytes] = []
        backend = store.backend
        real_get = backend.get

        def counting_get(key: bytes) -> bytes | None:
            reads.append(key)
            return real_get(key)

        backend.get = counting_get  # type: ignore[method-assign]
        delta: dict[bytes, bytes | None] = {KEYS[0]: b"a1", KEYS[1]: None, KEYS[2]: b"c1"}
        write = block_write(1, h("block1"), b"b", b"c", delta, [h("tx1")])
        store.commit_block(dataclasses.replace(write, prior_state={KEYS[0]: b"a0"}))
        backend.get = real_get  # type: ignore[method-assign]
        state_reads = {key for key in reads if key.startswith(STATE_PREFIX)}
        assert state_reads == {STATE_PREFIX + KEYS[1], STATE_PREFIX + KEYS[2]}
        assert_state_is(store, 0, first)
        assert_state_is(store, 1, {KEYS[0]: b"a1", KEYS[2]: b"c1"})


def test_one_changed_keys_record_a_height_lists_exactly_its_undo_entries(
    make_store: MakeStore,
) -> None:
    store = make_store(1000)
    commit_random_blocks(store, 25, seed=5)
    backend = store.backend  # type: ignore[attr-defined]
    undo_by_height: dict[int, set[bytes]] = {}
    for raw, _ in backend.iterate(UNDO_PREFIX):
        key, height = split_undo_key(raw)
        undo_by_height.setdefault(height, set()).add(key)
    listed = {}
    for raw, value in backend.iterate(CHANGED_PREFIX):
        assert len(raw) == 9, "one record a height, keyed by the height alone"
        listed[int.from_bytes(raw[1:], "big")] = set(decode_changed_keys(value))
    assert listed == undo_by_height and listed


@pytest.mark.parametrize(
    "keys", [[], [b""], [b"loan:\x01", b"loan:\x01\x01", bytes(300)], [b"x" * 65535]]
)
def test_changed_keys_round_trip(keys: list[bytes]) -> None:
    assert decode_changed_keys(encode_changed_keys(keys)) == keys


@pytest.mark.parametrize("raw", [b"\x00", b"\x00\x05abcd", b"\x00\x01a\x00"])
def test_a_damaged_changed_keys_record_is_refused(raw: bytes) -> None:
    with pytest.raises(HistoryCorruptError, match="ends inside"):
        decode_changed_keys(raw)


def test_a_store_written_before_with_a_record_a_key_is_still_pruned() -> None:
    """Heights a store wrote as ``"V" height state_key -> b""`` are pruned as before,
    beside heights with one record: every undo entry and every changed-keys record."""
    old_style = {b"loan:\x01": b"\x00", b"loan:\x01\x01": b"\x01v"}
    data: dict[bytes, bytes] = {}
    for key, old in old_style.items():
        data[undo_key(key, 1)] = old
        data[CHANGED_PREFIX + (1).to_bytes(8, "big") + key] = b""
    data.update(dict(undo_writes(lambda _key: None, 2, {b"borrower:B": b"v"})))

    class Backend:
        def get(self, key: bytes) -> bytes | None:
            return data.get(key)

        def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
            return iter(sorted((k, v) for k, v in data.items() if k.startswith(prefix)))

    deleted = {key for key, value in prune_writes(Backend(), 0, 2) if value is None}
    assert deleted == set(data)


def test_a_damaged_changed_keys_record_stops_the_commit_that_prunes_it(tmp_path: Path) -> None:
    with LevelDBStore(tmp_path / "db", history_heights=2) as store:
        commit_random_blocks(store, 3, seed=9)  # heights 0-2; height 3 prunes height 1
        store.backend.write([(CHANGED_PREFIX + (1).to_bytes(8, "big"), b"\x00\x09ab")])
        write = block_write(3, h("block3"), b"b", b"c", {KEYS[0]: b"v"}, [h("tx3")])
        with pytest.raises(StoreCorruptError, match="pruning the history up to height"):
            store.commit_block(write)


def test_a_version_4_store_opens_as_version_5_and_its_per_key_records_are_pruned(
    tmp_path: Path,
) -> None:
    """A store written before one changed-keys record a height: its history reads
    the same, its per-key records go as the window passes, and the version moves
    on (older code would not prune the new records, so it refuses the store)."""
    path = tmp_path / "db"
    with LevelDBStore(path, history_heights=4) as store:
        snapshots = commit_random_blocks(store, 6, seed=11)
    db = plyvel.DB(str(path))  # rewrite the history as version 4 wrote it
    for raw, value in list(db.iterator(prefix=CHANGED_PREFIX)):
        db.delete(raw)
        for key in decode_changed_keys(value):
            db.put(raw + key, b"")
    db.put(SCHEMA_KEY, encode_value((SCHEMA_NAME, 4)))
    db.close()
    with LevelDBStore(path, history_heights=4) as store:
        for height in range(1, 6):
            assert_state_is(store, height, snapshots[height])
        for height in range(6, 12):
            delta = {KEYS[height % len(KEYS)]: b"later-%d" % height}
            store.commit_block(block_write(height, h(f"b{height}"), b"b", b"c", delta, []))
    db = plyvel.DB(str(path))
    assert db.get(SCHEMA_KEY) == encode_value((SCHEMA_NAME, SCHEMA_VERSION)) and SCHEMA_VERSION == 5
    left = [raw for raw, _ in db.iterator(prefix=CHANGED_PREFIX)]
    undo_heights = {int.from_bytes(raw[-8:], "big") for raw, _ in db.iterator(prefix=UNDO_PREFIX)}
    db.close()
    assert all(len(raw) == 9 for raw in left)  # no per-key record outlived the window
    assert undo_heights <= set(range(8, 12))
