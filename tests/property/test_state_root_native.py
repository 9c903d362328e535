"""The C walk of the state tree (ledger/native/smt_update.c) against the Python one.

Both trees take the same blocks of changes from their own records; every
update must give the same root, node writes and replaced leaves, and the
records each writes must be identical. The C walk is built by ``make install``;
these tests fail (never skip) when it is missing, so CI always checks it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import state_root
from ledger.native import _smt
from ledger.state import state_key
from ledger.state_root import (
    Leaf,
    SmtUpdate,
    SparseMerkleTree,
    StateRootError,
    compute_root,
    leaf_hash,
    position_key,
    python_records,
)

keys = st.builds(
    state_key, st.sampled_from([b"out", b"acct", b"attest"]), st.binary(min_size=1, max_size=3)
)
values = st.binary(max_size=10)
blocks = st.lists(st.dictionaries(keys, st.none() | values, max_size=24), min_size=1, max_size=6)


@pytest.fixture(autouse=True)
def _native_setup() -> Iterator[None]:
    """Each test may lower the uint64 depth; put the default back afterwards."""
    yield
    _smt.setup(Leaf, StateRootError)


class Records:
    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}

    def apply(
        self, tree: SparseMerkleTree, update: SmtUpdate, *, native_records: bool = True
    ) -> None:
        records = update.records() if native_records else python_records(update)
        for key, record in records:
            if record is None:
                self.records.pop(key, None)
            else:
                self.records[key] = record
        tree.apply_update(update)


def trees(cache_nodes: int) -> tuple[Records, SparseMerkleTree, Records, SparseMerkleTree]:
    c_records, py_records = Records(), Records()
    c_tree = SparseMerkleTree(c_records.records.get, cache_nodes=cache_nodes)
    py_tree = SparseMerkleTree(py_records.records.get, cache_nodes=cache_nodes, native=False)
    return c_records, c_tree, py_records, py_tree


def test_the_c_walk_is_built_and_used() -> None:
    assert state_root.NATIVE_WALK, "run make install (python -m ledger.native.build)"
    empty: dict[bytes, bytes] = {}
    tree = SparseMerkleTree(empty.get)
    assert tree.compute_update({b"out:a": b"1"}).root == compute_root({b"out:a": b"1"})


@settings(max_examples=300)
@given(blocks, st.sampled_from([4, 64, 1 << 20]), st.sampled_from([62, 4, 1, 0]))
def test_same_updates_as_the_python_walk(
    changes: list[dict[bytes, bytes | None]], cache_nodes: int, small_depth: int
) -> None:
    # A small cache makes both walks load through the records (the C walk calls
    # back into SparseMerkleTree._load); a small uint64 depth sends the C walk's
    # positions through Python ints, as a 63-bit path collision would.
    _smt.setup(Leaf, StateRootError, small_depth)
    c_records, c_tree, py_records, py_tree = trees(cache_nodes)
    state: dict[bytes, bytes] = {}
    for delta in changes:
        c_update = c_tree.compute_update(delta)
        py_update = py_tree.compute_update(delta)
        assert c_update.root == py_update.root
        assert c_update.node_writes == py_update.node_writes
        assert c_update.empty_positions == py_update.empty_positions
        for node in c_update.node_writes.values():  # the C walk fills a Leaf's slots itself
            if isinstance(node, Leaf):
                assert node.hash == leaf_hash(node.path, node.value_hash)
                assert node.path_int == int.from_bytes(node.path, "big")
        assert c_update.replaced_leaves == py_update.replaced_leaves
        assert c_update.records(b"N") == python_records(py_update, b"N")
        c_records.apply(c_tree, c_update)
        py_records.apply(py_tree, py_update, native_records=False)
        for key, value in delta.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        assert c_tree.root() == compute_root(state)
        # apply_update's loop, into the C table and into the Python dict
        assert dict(c_tree._cache.items()) == py_tree._cache
    assert c_records.records == py_records.records


def test_many_keys_and_deletes_match() -> None:
    """A tree deep enough to have stored leaves at unstored depths become interior nodes."""
    c_records, c_tree, py_records, py_tree = trees(1 << 20)
    replaced = 0
    for block in range(40):
        delta: dict[bytes, bytes | None] = {
            state_key(b"attest", hashlib.sha256(b"%d/%d" % (block, i)).digest()): b"v%d" % i
            for i in range(60)
        }
        if block:
            gone = hashlib.sha256(b"%d/%d" % (block - 1, 7)).digest()
            delta[state_key(b"attest", gone)] = None
        c_update, py_update = c_tree.compute_update(delta), py_tree.compute_update(delta)
        assert c_update.records(b"N") == python_records(py_update, b"N")
        assert c_update.replaced_leaves == py_update.replaced_leaves
        replaced += len(py_update.replaced_leaves)
        c_records.apply(c_tree, c_update)
        py_records.apply(py_tree, py_update, native_records=False)
    assert c_tree.root() == py_tree.root()
    assert replaced > 0
    assert c_records.records == py_records.records


def test_values_and_keys_take_any_buffer_as_hashlib_does() -> None:
    empty: dict[bytes, bytes] = {}
    c_tree = SparseMerkleTree(empty.get)
    py_tree = SparseMerkleTree(empty.get, native=False)
    delta = {b"out:a": bytearray(b"x"), b"out:b": memoryview(b"y")}
    assert c_tree.compute_update(delta).root == py_tree.compute_update(delta).root  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c_tree.compute_update({b"out:a": "text"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        c_tree.compute_update({"out:a": b"x"})  # type: ignore[dict-item]


def test_the_node_cache_refuses_what_is_not_a_node() -> None:
    """The C walk reads cached nodes as C structs, so a corrupt node is refused
    when it would enter the cache, and the tree goes on unharmed."""
    records = Records()
    tree = SparseMerkleTree(records.records.get)
    records.apply(tree, tree.compute_update({b"out:a": b"1", b"out:b": b"2", b"out:c": b"3"}))
    cache = tree._cache
    assert isinstance(cache, _smt.NodeCache)
    before = dict(cache.items())
    with pytest.raises(StateRootError, match="corrupt"):
        cache[1] = "not a node"
    with pytest.raises(StateRootError, match="corrupt"):
        cache[2] = b"short"
    with pytest.raises(StateRootError, match="corrupt"):
        cache.apply({3: b"h" * 31}, ())
    assert dict(cache.items()) == before
    expected = compute_root({b"out:a": b"1", b"out:b": b"2", b"out:c": b"3", b"out:d": b"4"})
    assert tree.compute_update({b"out:d": b"4"}).root == expected


def test_a_failing_record_read_propagates() -> None:
    records = Records()
    tree = SparseMerkleTree(records.records.get, cache_nodes=4)
    records.apply(tree, tree.compute_update({b"out:%d" % i: b"v" for i in range(50)}))
    tree.clear_cache()

    def broken(key: bytes) -> bytes | None:
        if key != position_key(1):
            raise OSError("disk gone")
        return records.records.get(key)

    broken_tree = SparseMerkleTree(broken)
    with pytest.raises(OSError, match="disk gone"):
        broken_tree.compute_update({b"out:new": b"v"})


def test_records_refuse_what_is_not_a_node() -> None:
    with pytest.raises(TypeError):
        _smt.records({1: "text"}, frozenset(), b"N")
    with pytest.raises(TypeError):
        _smt.records({b"3": None}, frozenset(), b"N")  # type: ignore[dict-item]
    assert _smt.records({2: b"h" * 32, 3: None}, frozenset({2}), b"N") == [
        (b"N\x02", None),
        (b"N\x03", None),
    ]


def test_the_c_walk_and_python_agree_on_which_depths_hold_interior_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The C walk decides which records to write by its own constant: a build
    for another layout is refused at import, never used."""
    assert _smt.INTERIOR_RECORD_DEPTHS == state_root.INTERIOR_RECORD_DEPTHS == 4
    writes: dict[int, object] = {position: b"h" * 32 for position in range(1, 1 << 10)}
    stored = [position for position in writes if state_root.stores_interior(position)]
    records = _smt.records(writes, frozenset(), b"")
    assert [int.from_bytes(key, "big") for key, _ in records] == stored
    assert stored == [1, *range(16, 32), *range(256, 512)]

    class OtherLayout:
        INTERIOR_RECORD_DEPTHS = 2

    monkeypatch.setattr("ledger.native._smt", OtherLayout())
    with pytest.raises(ImportError, match="another tree layout"):
        state_root._load_native_update()


def test_setup_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError):
        _smt.setup(Leaf, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="small_depth"):
        _smt.setup(Leaf, StateRootError, 63)

    class Unslotted:
        pass

    with pytest.raises(TypeError, match="__slots__"):
        _smt.setup(Unslotted, StateRootError)


def test_records_hold_their_position_while_python_code_runs() -> None:
    """``replaced``'s ``__contains__`` is Python code: one that empties ``writes``
    freed the position the C loop still read (a review's find; wrong keys or a
    crash under PYTHONMALLOC=debug)."""
    position = (1 << 301) | 0x5A5A5A5A5A5A  # an unstored depth: the replaced check runs
    writes: dict[int, object] = {position: b"h" * 32}
    expected = b"N" + position.to_bytes(38, "big")
    del position

    class Emptying(frozenset[int]):
        def __contains__(self, item: object) -> bool:
            writes.clear()
            return True

    assert _smt.records(writes, Emptying(), b"N") == [(expected, None)]
