"""Hypothesis properties of the state root and the stores."""

from __future__ import annotations

import hashlib
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.leveldb_store import LevelDBStore
from ledger.state import StateDelta, output_key, state_key
from ledger.state_root import (
    EMPTY_ROOT,
    SparseMerkleTree,
    StateProof,
    compute_root,
    verify_state_proof,
)
from ledger.store import MemoryStore, Store
from tests.store_writes import block_write

keys = st.builds(
    state_key, st.sampled_from([b"out", b"acct", b"loan", b"meta"]), st.binary(max_size=6)
)
values = st.binary(max_size=12)
states = st.dictionaries(keys, values, max_size=40)
changes = st.dictionaries(keys, st.none() | values, max_size=30)


class Nodes:
    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}

    def apply(self, tree: SparseMerkleTree, delta: dict[bytes, bytes | None]) -> bytes:
        update = tree.compute_update(delta)
        for key, record in update.records():
            if record is None:
                self.records.pop(key, None)
            else:
                self.records[key] = record
        tree.apply_update(update)
        return update.root


def fresh_tree(cache_nodes: int = 1 << 20) -> tuple[Nodes, SparseMerkleTree]:
    nodes = Nodes()
    return nodes, SparseMerkleTree(nodes.records.get, cache_nodes=cache_nodes)


@given(states, st.randoms(use_true_random=False), st.integers(1, 6))
def test_root_is_independent_of_insertion_order_and_batching(
    state: dict[bytes, bytes], rng: object, batches: int
) -> None:
    items = list(state.items())
    rng.shuffle(items)  # type: ignore[attr-defined]
    nodes, tree = fresh_tree(cache_nodes=rng.choice([4, 1 << 20]))  # type: ignore[attr-defined]
    for i in range(batches):
        nodes.apply(tree, dict(items[i::batches]))
    assert tree.root() == compute_root(state)


@given(states, changes)
def test_incremental_update_equals_from_scratch(
    state: dict[bytes, bytes], delta: dict[bytes, bytes | None]
) -> None:
    nodes, tree = fresh_tree()
    nodes.apply(tree, dict(state))
    after = dict(state)
    for key, value in delta.items():
        if value is None:
            after.pop(key, None)
        else:
            after[key] = value
    assert nodes.apply(tree, delta) == compute_root(after)
    # and the stored records alone (no cache) give the same root
    assert SparseMerkleTree(nodes.records.get).root() == compute_root(after)


@given(states, st.dictionaries(keys, values, min_size=1, max_size=20))
def test_deleting_new_keys_restores_the_previous_root(
    state: dict[bytes, bytes], extra: dict[bytes, bytes]
) -> None:
    extra = {k: v for k, v in extra.items() if k not in state}
    nodes, tree = fresh_tree()
    before = nodes.apply(tree, dict(state))
    nodes.apply(tree, dict(extra))
    assert nodes.apply(tree, dict.fromkeys(extra)) == before
    records_before = Nodes()
    records_before.apply(SparseMerkleTree(records_before.records.get), dict(state))
    assert nodes.records == records_before.records  # no stale node left behind


@given(states, keys, st.data())
def test_proofs_verify_and_tampering_fails(
    state: dict[bytes, bytes], key: bytes, data: st.DataObject
) -> None:
    nodes, tree = fresh_tree()
    root = nodes.apply(tree, dict(state))
    probe = key
    probe_present: bool = data.draw(st.booleans(), label="probe a present key")
    if state and probe_present:
        probe = data.draw(st.sampled_from(sorted(state)), label="present key")
    value = state.get(probe)
    proof = tree.prove(probe)
    assert verify_state_proof(root, probe, value, proof)
    assert not verify_state_proof(root, probe, (value or b"") + b"x", proof)
    if value is not None:
        assert not verify_state_proof(root, probe, None, proof)
    if proof.siblings:
        i = data.draw(st.integers(0, len(proof.siblings) - 1))
        siblings = list(proof.siblings)
        siblings[i] = hashlib.sha256(siblings[i]).digest()
        tampered = StateProof(tuple(siblings), proof.leaf_path, proof.leaf_value_hash)
        assert not verify_state_proof(root, probe, value, tampered)
    assert StateProof.decode(proof.encode()) == proof


def commit_all(store: Store, blocks: list[dict[bytes, bytes | None]]) -> None:
    for height, delta in enumerate(blocks):
        block_hash = hashlib.sha256(b"block %d" % height).digest()
        tx_ids = [hashlib.sha256(b"tx %d" % height).digest()]
        owner_changes = [
            (b"owner", hashlib.sha256(key).digest(), True)
            for key, value in delta.items()
            if value is not None and key not in blocks_seen(blocks[:height])
        ]
        store.commit_block(
            block_write(
                height,
                block_hash,
                b"b%d" % height,
                b"c",
                StateDelta(delta.items()),
                tx_ids,
                owner_changes,
            )
        )


def blocks_seen(blocks: list[dict[bytes, bytes | None]]) -> set[bytes]:
    return {key for delta in blocks for key, value in delta.items() if value is not None}


@settings(max_examples=25)
@given(st.lists(changes, min_size=1, max_size=6))
def test_memory_and_leveldb_stores_agree(blocks: list[dict[bytes, bytes | None]]) -> None:
    memory = MemoryStore()
    commit_all(memory, blocks)
    with tempfile.TemporaryDirectory() as tmp:
        with LevelDBStore(tmp) as disk:
            commit_all(disk, blocks)
            assert disk.state_root() == memory.state_root()
            assert list(disk.iter_state()) == list(memory.iter_state())
            assert disk.outputs_by_owner(b"owner") == memory.outputs_by_owner(b"owner")
        with LevelDBStore(tmp) as reopened:
            assert reopened.state_root() == memory.state_root()
            assert reopened.height() == memory.height() == len(blocks) - 1
    assert memory.state_root() == compute_root(dict(memory.iter_state()))


class TreeMachine(RuleBasedStateMachine):
    """Random puts, deletes and proofs against a dict model, with a tiny node cache."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes, self.tree = fresh_tree(cache_nodes=16)
        self.model: dict[bytes, bytes] = {}
        self.pending: dict[bytes, bytes | None] = {}

    @rule(key=keys, value=values)
    def put(self, key: bytes, value: bytes) -> None:
        self.pending[key] = value

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete_existing(self, data: st.DataObject) -> None:
        self.pending[data.draw(st.sampled_from(sorted(self.model)))] = None

    @rule(key=keys)
    def delete_any(self, key: bytes) -> None:
        self.pending[key] = None

    @rule()
    def commit(self) -> None:
        self.nodes.apply(self.tree, self.pending)
        for key, value in self.pending.items():
            if value is None:
                self.model.pop(key, None)
            else:
                self.model[key] = value
        self.pending = {}

    @rule(key=keys)
    def prove_any(self, key: bytes) -> None:
        assert verify_state_proof(self.tree.root(), key, self.model.get(key), self.tree.prove(key))

    @invariant()
    def root_matches_model(self) -> None:
        assert self.tree.root() == compute_root(self.model)
        if not self.model:
            assert self.tree.root() == EMPTY_ROOT


TestTreeMachine = TreeMachine.TestCase
TestTreeMachine.settings = settings(max_examples=40, stateful_step_count=30)


def test_output_keys_are_namespaced() -> None:
    assert output_key(b"x") == b"out:x"
