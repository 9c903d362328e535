"""The Store contract, run against MemoryStore and LevelDBStore alike."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import plyvel
import pytest

from ledger.batch import BlockMetadata, RejectedRequest
from ledger.codec import encode_value
from ledger.leveldb_store import LevelDBStore
from ledger.reasons import Reason
from ledger.state import (
    NS_ACCOUNT,
    NS_OUTPUT,
    StateDelta,
    StateKeyError,
    account_key,
    output_key,
    split_state_key,
    state_key,
)
from ledger.state_root import (
    EMPTY_ROOT,
    compute_root,
    encode_node,
    position_key,
    stores_interior,
    verify_state_proof,
)
from ledger.store import (
    NODE_PREFIX,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    BackendReader,
    BlockWrite,
    KeyValueStore,
    MemoryBackend,
    MemoryStore,
    OwnerIndexChange,
    SchemaVersionError,
    Store,
    StoreCorruptError,
    StoreInvariantError,
    StoreLatchedError,
    StoreSnapshot,
    TxLocation,
)
from tests.store_writes import block_write
from tests.unit.test_state_history import commit_random_blocks


def h(label: bytes | str) -> bytes:
    return hashlib.sha256(label if isinstance(label, bytes) else label.encode()).digest()


@pytest.fixture(params=["memory", "leveldb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def make() -> Store:
        store: Store = MemoryStore() if request.param == "memory" else LevelDBStore(tmp_path / "db")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def genesis(store: Store, delta: StateDelta | None = None) -> bytes:
    return store.commit_block(
        block_write(0, h("genesis"), b"genesis", b"", delta or StateDelta(), [])
    )


def test_empty_store(make_store: Callable[[], Store]) -> None:
    store = make_store()
    assert isinstance(store, Store)
    assert store.height() == -1
    assert store.tip_hash() is None
    assert store.state_root() == EMPTY_ROOT
    assert store.block_at(0) is None
    assert store.get_state(output_key(b"x")) is None
    assert list(store.iter_state()) == []


def test_commit_and_read_back(make_store: Callable[[], Store]) -> None:
    store = make_store()
    alice, bob = h("alice"), h("bob")
    genesis(store, StateDelta([(account_key(alice), b"A"), (account_key(bob), b"B")]))
    delta = StateDelta([(output_key(h("o1")), b"out1"), (output_key(h("o2")), b"out2")])
    tx_ids = [h("tx1"), h("tx2")]
    root = store.commit_block(
        block_write(
            1,
            h("block1"),
            b"block-one",
            b"cert-one",
            delta,
            tx_ids,
            [OwnerIndexChange(alice, h("o1"), True), (bob, h("o2"), True)],
        )
    )
    state = {
        account_key(alice): b"A",
        account_key(bob): b"B",
        output_key(h("o1")): b"out1",
        output_key(h("o2")): b"out2",
    }
    assert root == store.state_root() == compute_root(state)
    assert store.height() == 1
    assert store.tip_hash() == h("block1")
    assert store.block_at(1) == b"block-one"
    assert store.block_at(0) == b"genesis"
    assert store.block_at(2) is None
    assert store.block_at(-1) is None
    assert store.certificate_at(1) == b"cert-one"
    assert store.certificate_at(0) == b""
    assert store.block_hash_at(1) == h("block1")
    assert store.block_by_hash(h("block1")) == b"block-one"
    assert store.height_of_block(h("genesis")) == 0
    assert store.block_by_hash(h("nope")) is None
    assert store.tx_location(h("tx2")) == TxLocation(1, 1)
    assert store.tx_location(h("tx1")) == (1, 0)
    assert store.tx_location(h("tx3")) is None
    assert store.outputs_by_owner(alice) == [h("o1")]
    assert store.outputs_by_owner(bob) == [h("o2")]
    assert store.outputs_by_owner(h("carol")) == []
    assert dict(store.iter_state()) == state
    assert list(store.iter_namespace(NS_ACCOUNT)) == sorted([(alice, b"A"), (bob, b"B")])
    for key, value in state.items():
        assert verify_state_proof(root, key, value, store.prove_state(key))

    # spend o1 (delete), move value to bob
    store.commit_block(
        block_write(
            2,
            h("block2"),
            b"block-two",
            b"cert-two",
            StateDelta([(output_key(h("o1")), None), (output_key(h("o3")), b"out3")]),
            [h("tx3")],
            [(alice, h("o1"), False), (bob, h("o3"), True)],
        )
    )
    del state[output_key(h("o1"))]
    state[output_key(h("o3"))] = b"out3"
    assert store.state_root() == compute_root(state)
    assert store.outputs_by_owner(alice) == []
    assert store.outputs_by_owner(bob) == sorted([h("o2"), h("o3")])
    assert store.get_state(output_key(h("o1"))) is None
    assert verify_state_proof(
        store.state_root(), output_key(h("o1")), None, store.prove_state(output_key(h("o1")))
    )


def test_heights_must_be_consecutive(make_store: Callable[[], Store]) -> None:
    store = make_store()
    with pytest.raises(StoreInvariantError, match="height 1"):
        store.commit_block(block_write(1, h("b1"), b"", b"", StateDelta(), []))
    genesis(store)
    for bad in [0, 2, 5, -1]:
        with pytest.raises(StoreInvariantError):
            store.commit_block(block_write(bad, h(f"b{bad}"), b"", b"", StateDelta(), []))
    assert store.height() == 0


def test_rejected_commits_write_nothing(make_store: Callable[[], Store]) -> None:
    store = make_store()
    genesis(store)
    store.commit_block(
        block_write(1, h("b1"), b"b1", b"c1", StateDelta(), [h("tx1")], [(h("a"), h("o"), True)])
    )
    root = store.state_root()
    change = StateDelta([(output_key(b"new"), b"v")])
    bad_calls: list[Callable[[], object]] = [
        # tx id already committed
        lambda: store.commit_block(block_write(2, h("b2"), b"", b"", change, [h("tx1")])),
        # tx id twice in one block
        lambda: store.commit_block(block_write(2, h("b2"), b"", b"", change, [h("t"), h("t")])),
        # block hash already stored
        lambda: store.commit_block(block_write(2, h("b1"), b"", b"", change, [])),
        # adding an indexed output again / removing an unindexed one
        lambda: store.commit_block(
            block_write(2, h("b2"), b"", b"", change, [], [(h("a"), h("o"), True)])
        ),
        lambda: store.commit_block(
            block_write(2, h("b2"), b"", b"", change, [], [(h("a"), h("x"), False)])
        ),
        # malformed hashes
        lambda: store.commit_block(block_write(2, b"short", b"", b"", change, [])),
        lambda: store.commit_block(block_write(2, h("b2"), b"", b"", change, [b"short"])),
    ]
    for call in bad_calls:
        with pytest.raises(StoreInvariantError):
            call()
        assert store.height() == 1
        assert store.state_root() == root
        assert store.get_state(output_key(b"new")) is None
        assert store.block_at(2) is None
        assert store.tx_location(h("t")) is None
    # an output created and spent in the same block nets to nothing
    store.commit_block(
        block_write(
            2, h("b2"), b"", b"", change, [], [(h("a"), h("z"), True), (h("a"), h("z"), False)]
        )
    )
    assert store.outputs_by_owner(h("a")) == [h("o")]


def test_preview_matches_commit(make_store: Callable[[], Store]) -> None:
    store = make_store()
    genesis(store)
    delta = StateDelta((output_key(b"%d" % i), b"v") for i in range(100))
    preview = store.preview_state_root(delta)
    assert store.state_root() != preview
    other = StateDelta([(output_key(b"other"), b"v")])
    assert store.preview_state_root(other) != preview
    assert store.commit_block(block_write(1, h("b1"), b"", b"", delta, [])) == preview
    # a preview computed before the last commit is not reused after it
    again = store.preview_state_root(delta)
    assert again == store.state_root()


def test_state_view_overlays_pending_writes(make_store: Callable[[], Store]) -> None:
    store = make_store()
    genesis(store, StateDelta((output_key(b"%d" % i), b"base%d" % i) for i in range(5)))
    view = store.view()
    assert view.get_state(output_key(b"1")) == b"base1"
    view.delete(output_key(b"1"))
    view.put(output_key(b"7"), b"new7")
    view.put(output_key(b"2"), b"changed2")
    assert view.get_state(output_key(b"1")) is None
    assert view.get(NS_OUTPUT, b"7") == b"new7"
    assert store.get_state(output_key(b"7")) is None  # nothing reached the store
    assert list(view.iter_namespace(NS_OUTPUT)) == [
        (b"0", b"base0"),
        (b"2", b"changed2"),
        (b"3", b"base3"),
        (b"4", b"base4"),
        (b"7", b"new7"),
    ]
    # a tx-level child view whose writes are dropped, and one that is merged
    dropped = view.child()
    dropped.put(output_key(b"8"), b"x")
    kept = view.child()
    kept.delete(output_key(b"7"))
    assert kept.get_state(output_key(b"2")) == b"changed2"
    view.merge(kept.delta())
    assert view.get_state(output_key(b"7")) is None
    assert view.get_state(output_key(b"8")) is None
    delta = view.delta()
    assert list(delta) == [output_key(b"1"), output_key(b"7"), output_key(b"2")]
    store.commit_block(block_write(1, h("b1"), b"", b"", delta, []))
    assert dict(store.iter_state()) == dict(view.iter_state())


def test_state_keys_are_checked() -> None:
    assert split_state_key(state_key(b"out", b"a:b")) == (b"out", b"a:b")
    for bad_namespace in [b"", b"Out", b"o:t", b"x" * 17, b"\xff", b"out\n"]:
        with pytest.raises(StateKeyError):
            state_key(bad_namespace, b"k")
    # Once "out" has passed (it is remembered), its neighbours still do not.
    not_bytes: list[object] = [bytearray(b"out"), "out"]
    for wrong in [*not_bytes, b"out\n", b"outt" * 5]:
        with pytest.raises(StateKeyError):
            state_key(wrong, b"k")  # type: ignore[arg-type]
    with pytest.raises(StateKeyError):
        split_state_key(b"out\n:k")
    delta = StateDelta()
    with pytest.raises(StateKeyError):
        delta.put(b"no-namespace", b"v")
    with pytest.raises(StateKeyError):
        state_key(b"out", b"k" * 253)  # 257 bytes with "out:"
    # The delta checks the length itself, not only through state_key().
    delta.put(b"out:" + b"k" * 252, b"v")  # 256 bytes: the limit
    with pytest.raises(StateKeyError):
        delta.put(b"out:" + b"k" * 253, b"v")
    delta.put(state_key(b"out", b"big"), b"\x00" * (1 << 20))  # 1 MiB: the limit
    with pytest.raises(ValueError, match="too large"):
        delta.put(state_key(b"out", b"big"), b"\x00" * ((1 << 20) + 1))


def test_leveldb_reopen_gives_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelDBStore(path) as store:
        genesis(store)
        for height in range(1, 6):
            delta = StateDelta((output_key(b"%d-%d" % (height, i)), b"v") for i in range(20))
            store.commit_block(
                block_write(height, h(b"b%d" % height), b"blk", b"crt", delta, [h(b"t%d" % height)])
            )
        root, tip = store.state_root(), store.tip_hash()
        state = dict(store.iter_state())
    with LevelDBStore(path, cache_nodes=4) as store:
        assert store.height() == 5
        assert store.tip_hash() == tip
        assert store.state_root() == root == compute_root(state)
        assert store.tx_location(h(b"t3")) == (3, 0)
        store.commit_block(
            block_write(6, h(b"b6"), b"", b"", StateDelta([(output_key(b"1-1"), None)]), [])
        )
        del state[output_key(b"1-1")]
        assert store.state_root() == compute_root(state)


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    LevelDBStore(path).close()
    db = plyvel.DB(str(path))
    db.put(SCHEMA_KEY, encode_value(("veil/ledger-store", 99)))
    db.close()
    with pytest.raises(SchemaVersionError, match="99"):
        LevelDBStore(path)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = plyvel.DB(str(path), create_if_missing=True)
    db.put(b"something", b"else")
    db.close()
    with pytest.raises(SchemaVersionError, match="no schema key"):
        LevelDBStore(path)


def test_tampered_state_tree_is_detected_on_open(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelDBStore(path) as store:
        genesis(store, StateDelta([(output_key(b"a"), b"1"), (output_key(b"b"), b"2")]))
    db = plyvel.DB(str(path))
    db.put(b"N\x01", b"\x01" + bytes(32))  # overwrite the root node
    db.close()
    with pytest.raises(StoreCorruptError):
        LevelDBStore(path)


def test_a_failed_write_stops_further_commits(tmp_path: Path) -> None:
    store = LevelDBStore(tmp_path / "db")
    genesis(store)

    def broken_write(batch: object, *, sync: bool = True) -> None:
        raise OSError("disk on fire")

    store.backend.write = broken_write  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk on fire"):
        store.commit_block(
            block_write(1, h("b1"), b"", b"", StateDelta([(output_key(b"a"), b"1")]), [])
        )
    assert store.height() == 0
    assert store.state_root() == EMPTY_ROOT
    with pytest.raises(StoreLatchedError, match="reopen"):
        store.commit_block(block_write(1, h("b1"), b"", b"", StateDelta(), []))
    store.close()
    with LevelDBStore(tmp_path / "db") as reopened:
        assert reopened.height() == 0
        reopened.commit_block(
            block_write(1, h("b1"), b"", b"", StateDelta([(output_key(b"a"), b"1")]), [])
        )
        assert reopened.state_root() == compute_root({output_key(b"a"): b"1"})


def test_owner_index_keeps_owners_of_different_lengths_apart(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    genesis(store)
    store.commit_block(
        block_write(
            1,
            h("b1"),
            b"",
            b"",
            StateDelta(),
            [],
            [(b"a", b"\x01", True), (b"ab", b"\x02", True), (b"a", b"b\x03", True)],
        )
    )
    assert store.outputs_by_owner(b"a") == [b"\x01", b"b\x03"]
    assert store.outputs_by_owner(b"ab") == [b"\x02"]
    assert store.outputs_by_owner(b"b") == []
    with pytest.raises(StoreInvariantError):
        store.commit_block(
            block_write(2, h("b2"), b"", b"", StateDelta(), [], [(b"", b"\x01", True)])
        )


def test_iteration_by_prefix_and_namespace(make_store: Callable[[], Store]) -> None:
    store = make_store()
    delta = StateDelta()
    for namespace in [b"out", b"outs", b"acct", b"o"]:
        for key in [b"", b"\x00", b"k", b"k\xff", b"z"]:
            delta.put(state_key(namespace, key), namespace + key)
    genesis(store, delta)
    assert [k for k, _ in store.iter_namespace(NS_OUTPUT)] == [b"", b"\x00", b"k", b"k\xff", b"z"]
    assert all(
        v.startswith(b"out") and not v.startswith(b"outs")
        for _, v in store.iter_namespace(NS_OUTPUT)
    )
    assert [k for k, _ in store.iter_state(b"outs:k")] == [b"outs:k", b"outs:k\xff"]
    assert len(list(store.iter_state())) == 20
    view = store.view()
    view.delete(state_key(b"out", b"k"))
    view.put(state_key(b"out", b"a"), b"new")
    assert [k for k, _ in view.iter_namespace(NS_OUTPUT)] == [b"", b"\x00", b"a", b"k\xff", b"z"]


def test_verify_state_root_detects_state_that_does_not_match_the_tree(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelDBStore(path) as store:
        genesis(store, StateDelta([(output_key(b"a"), b"1"), (output_key(b"b"), b"2")]))
        assert store.verify_state_root() == store.state_root()
    db = plyvel.DB(str(path))
    db.put(b"S" + output_key(b"a"), b"forged")
    db.close()
    with LevelDBStore(path) as store, pytest.raises(StoreCorruptError, match="tree says"):
        store.verify_state_root()


def test_a_block_is_stored_with_its_metadata_and_rejected_requests(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    genesis(store)
    rejected = (
        RejectedRequest(0, "MALFORMED", b"\x93\x01"),
        RejectedRequest(3, "DUPLICATE_TX", b"tx bytes"),
    )
    store.commit_block(
        BlockWrite(
            height=1,
            block_hash=h("b1"),
            block_bytes=b"block",
            certificate_bytes=b"certificate",
            metadata=BlockMetadata(1_700_000_000_123, 5),
            rejected=rejected,
            delta=StateDelta(),
            tx_ids=(h("t1"),),
        )
    )
    assert store.metadata_at(1) == BlockMetadata(1_700_000_000_123, 5)
    assert store.rejected_at(1) == rejected
    assert [r.reason for r in rejected] == [Reason.MALFORMED, Reason.DUPLICATE_TX]
    assert store.metadata_at(0) == BlockMetadata(0, 0) and store.rejected_at(0) == ()
    assert store.metadata_at(2) is None and store.rejected_at(-1) is None


def test_a_malformed_block_write_is_refused_and_writes_nothing(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    genesis(store)
    base = block_write(1, h("b1"), b"", b"", StateDelta([(output_key(b"x"), b"1")]), [])
    bad_writes = [
        dataclasses.replace(base, metadata=(0, 0)),  # type: ignore[arg-type]
        dataclasses.replace(base, rejected=[RejectedRequest(0, "MALFORMED", b"")]),  # type: ignore[arg-type]
        dataclasses.replace(base, rejected=(b"junk",)),  # type: ignore[arg-type]
        dataclasses.replace(
            base,
            rejected=(RejectedRequest(2, "MALFORMED", b""), RejectedRequest(1, "MALFORMED", b"")),
        ),
        dataclasses.replace(
            base,
            rejected=(RejectedRequest(1, "MALFORMED", b""), RejectedRequest(1, "MALFORMED", b"")),
        ),
        dataclasses.replace(base, height=True),
        dataclasses.replace(base, certificate_bytes="cert"),  # type: ignore[arg-type]
    ]
    for write in bad_writes:
        with pytest.raises(StoreInvariantError):
            store.commit_block(write)
        assert store.height() == 0 and store.get_state(output_key(b"x")) is None
    store.commit_block(base)
    assert store.height() == 1


def test_an_unreadable_rejected_list_or_metadata_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelDBStore(path) as store:
        genesis(store)
    db = plyvel.DB(str(path))
    db.put(b"R" + (0).to_bytes(8, "big"), encode_value(((0, "NOT_A_REASON", b""),)))
    db.put(b"M" + (0).to_bytes(8, "big"), b"\xc1")
    db.close()
    with LevelDBStore(path) as store:
        with pytest.raises(StoreCorruptError, match="rejected list of block 0"):
            store.rejected_at(0)
        with pytest.raises(StoreCorruptError, match="metadata of block 0"):
            store.metadata_at(0)


def test_a_snapshot_answers_for_its_block_whatever_is_committed_later(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    alice = h("alice")
    genesis(store, StateDelta([(account_key(alice), b"A")]))
    store.commit_block(
        block_write(
            1,
            h("b1"),
            b"one",
            b"c1",
            StateDelta([(output_key(h("o1")), b"1")]),
            [h("t1")],
            [(alice, h("o1"), True)],
        )
    )
    at_one = store.snapshot()
    root_one = store.state_root()
    store.commit_block(
        block_write(
            2,
            h("b2"),
            b"two",
            b"c2",
            StateDelta([(output_key(h("o1")), None), (output_key(h("o2")), b"2")]),
            [h("t2")],
            [(alice, h("o1"), False), (alice, h("o2"), True)],
        )
    )
    assert store.height() == 2 and store.outputs_by_owner(alice) == [h("o2")]
    assert (at_one.height(), at_one.tip_hash(), at_one.state_root()) == (1, h("b1"), root_one)
    assert at_one.block_at(2) is None and at_one.block_hash_at(2) is None
    assert at_one.tx_location(h("t2")) is None
    assert at_one.tx_location(h("t1")) == TxLocation(1, 0)
    assert at_one.height_of_block(h("b2")) is None
    assert at_one.outputs_by_owner(alice) == [h("o1")]
    assert at_one.get_state(output_key(h("o1"))) == b"1"
    assert at_one.get_state(output_key(h("o2"))) is None
    assert compute_root(dict(at_one.iter_state())) == root_one
    assert at_one.metadata_at(1) is not None and at_one.rejected_at(1) == ()
    assert store.snapshot().height() == 2


def test_a_snapshot_read_from_another_thread_never_mixes_two_blocks(
    make_store: Callable[[], Store],
) -> None:
    """A reader thread takes no lock and reads only snapshots: each one's height, its
    state and its indexes always describe the same block while the writer commits."""
    store = make_store()
    owner = h("owner")
    genesis(store, StateDelta([(state_key(NS_ACCOUNT, owner), encode_value(0))]))
    latest = [store.snapshot()]
    done = threading.Event()
    problems: list[str] = []

    def read() -> None:
        while not done.is_set():
            view = latest[0]
            height = view.height()
            counter = view.get_state(state_key(NS_ACCOUNT, owner))
            outputs = view.outputs_by_owner(owner)
            txs = [view.tx_location(h(f"tx{i}")) for i in (height, height + 1)]
            if counter != encode_value(height) or len(outputs) != height:
                problems.append(f"height {height}: counter {counter!r}, {len(outputs)} outputs")
            if (txs[0] is None and height > 0) or txs[1] is not None:
                problems.append(f"height {height}: tx index {txs}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for height in range(1, 150):
            delta = StateDelta(
                [
                    (state_key(NS_ACCOUNT, owner), encode_value(height)),
                    (output_key(h(f"o{height}")), b"o"),
                ]
            )
            store.commit_block(
                block_write(
                    height,
                    h(f"b{height}"),
                    b"blk",
                    b"c",
                    delta,
                    [h(f"tx{height}")],
                    [(owner, h(f"o{height}"), True)],
                )
            )
            latest[0] = store.snapshot()
    finally:
        done.set()
        reader.join()
    assert problems == []


def test_unsynced_block_commits_are_made_durable_by_sync(tmp_path: Path) -> None:
    """Catch-up commits certified blocks with ``sync=False`` and syncs once per run:
    the backend is asked for an unsynced write, then for one synced (empty) write."""
    store = LevelDBStore(tmp_path / "db")
    genesis(store)
    write = store.backend.write
    calls: list[tuple[int, bool]] = []

    def recorded(batch: Sequence[tuple[bytes, bytes | None]], *, sync: bool = True) -> None:
        calls.append((len(batch), sync))
        write(batch, sync=sync)

    store.backend.write = recorded  # type: ignore[method-assign]
    store.commit_block(
        block_write(1, h("b1"), b"", b"", StateDelta([(output_key(b"a"), b"1")]), []), sync=False
    )
    store.sync()
    assert [sync for _, sync in calls] == [False, True]
    assert calls[1][0] == 0
    store.close()
    reopened = LevelDBStore(tmp_path / "db")
    assert reopened.height() == 1
    assert reopened.get_state(output_key(b"a")) == b"1"


def test_sync_after_a_failed_write_refuses(tmp_path: Path) -> None:
    store = LevelDBStore(tmp_path / "db")
    genesis(store)

    def broken_write(batch: object, *, sync: bool = True) -> None:
        raise OSError("disk on fire")

    store.backend.write = broken_write  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk on fire"):
        store.commit_block(
            block_write(1, h("b1"), b"", b"", StateDelta([(output_key(b"a"), b"1")]), []),
            sync=False,
        )
    with pytest.raises(StoreLatchedError, match="earlier block write failed"):
        store.sync()


class CountingReads:
    """A backend snapshot that counts its point reads."""

    def __init__(self, inner: BackendReader) -> None:
        self.inner = inner
        self.gets = 0

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return self.inner.get(key)

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self.inner.iterate(prefix, start)


def test_a_snapshot_reads_each_state_key_and_tx_location_from_the_backend_once() -> None:
    """The mempool re-admits every pending tx after each block and reads the same
    few keys for each: a snapshot never changes, so it answers repeats from memory
    (before: one checksummed LevelDB read per call)."""
    backend = MemoryBackend()
    store = KeyValueStore(backend)
    alice = h("alice")
    genesis(store, StateDelta([(account_key(alice), b"A")]))
    store.commit_block(
        block_write(1, h("b1"), b"one", b"c1", StateDelta([(output_key(h("o1")), b"1")]), [h("t1")])
    )
    reads = CountingReads(backend.snapshot())
    snapshot = StoreSnapshot(reads, store.height(), store.tip_hash(), store.state_root(), 0)
    for _ in range(3):
        assert snapshot.get_state(account_key(alice)) == b"A"
        assert snapshot.get_state(output_key(h("o2"))) is None
        assert snapshot.tx_location(h("t1")) == TxLocation(1, 0)
        assert snapshot.tx_location(h("t2")) is None
    assert reads.gets == 4
    store.commit_block(
        block_write(2, h("b2"), b"two", b"c2", StateDelta([(output_key(h("o2")), b"2")]), [h("t2")])
    )
    assert snapshot.get_state(output_key(h("o2"))) is None  # still the block it was taken at
    assert store.snapshot().get_state(output_key(h("o2"))) == b"2"


def _stored_interior_in(version: int, position: int) -> bool:
    """Whether schema ``version`` kept an interior record at ``position``."""
    return version == 2 or (version == 3 and bool(position.bit_length() & 1))


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_store_drops_the_interior_records_this_layout_does_not_keep(
    tmp_path: Path, version: int
) -> None:
    """Version 2 stored every interior node and version 3 every even-depth one;
    version 4 reads the others from their children, so an older record left in
    place would go stale at the next block that changes it."""
    path = tmp_path / "db"
    with LevelDBStore(path) as store:
        snapshots = commit_random_blocks(store, 30, seed=11)
        interior = {
            pos: node
            for pos, node in store._tree._cache.items()
            if type(node) is bytes
            and not stores_interior(pos)
            and _stored_interior_in(version, pos)
        }
        root = store.state_root()
    assert interior, f"the fixture has interior nodes version {version} stored"
    db = plyvel.DB(str(path))  # write the older layout back by hand
    for pos, node in interior.items():
        db.put(NODE_PREFIX + position_key(pos), encode_node(node))
    db.put(SCHEMA_KEY, encode_value(("veil/ledger-store", version)))
    db.close()
    with LevelDBStore(path) as store:
        assert store.state_root() == root == compute_root(snapshots[-1])
        more = {output_key(b"later-%d" % i): b"x" for i in range(40)}
        store.commit_block(block_write(30, h(b"b30"), b"", b"", StateDelta(list(more.items())), []))
        state = {**snapshots[-1], **more}
        assert store.state_root() == compute_root(state)
    db = plyvel.DB(str(path))
    assert db.get(SCHEMA_KEY) == encode_value(("veil/ledger-store", SCHEMA_VERSION))
    unstored_interior = [
        key
        for key, record in db.iterator(prefix=NODE_PREFIX)
        if record[:1] == b"\x01" and not stores_interior(int.from_bytes(key[1:], "big"))
    ]
    db.close()
    assert unstored_interior == []
    with LevelDBStore(path, cache_nodes=8) as store:  # a cold cache reads records only
        root = store.state_root()
        for key, value in state.items():
            assert verify_state_proof(root, key, value, store.prove_state(key))
