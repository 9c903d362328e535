"""The sparse Merkle state root against an independent reference of the documented hashing."""

from __future__ import annotations

import hashlib
import random

import pytest

from ledger.state import output_key
from ledger.state_root import (
    EMPTY_ROOT,
    Leaf,
    SparseMerkleTree,
    StateProof,
    StateRootError,
    compute_root,
    decode_node,
    encode_node,
    root_from_proof,
    stores_interior,
    verify_state_proof,
)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(state: dict[bytes, bytes]) -> bytes:
    """docs/storage.md, written as plainly as possible."""

    def bit(path: bytes, depth: int) -> int:
        return (path[depth // 8] >> (7 - depth % 8)) & 1

    def subtree(leaves: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not leaves:
            return bytes(32)
        if len(leaves) == 1:
            path, value = leaves[0]
            return sha(b"\x00" + path + sha(value))
        left = [leaf for leaf in leaves if bit(leaf[0], depth) == 0]
        right = [leaf for leaf in leaves if bit(leaf[0], depth) == 1]
        return sha(b"\x01" + subtree(left, depth + 1) + subtree(right, depth + 1))

    return subtree([(sha(k), v) for k, v in state.items()], 0)


class DictNodes:
    """A node source that persists ``SmtUpdate`` records in a dict, like a store does."""

    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}

    def read(self, key: bytes) -> bytes | None:
        return self.records.get(key)

    def write(self, tree: SparseMerkleTree, changes: dict[bytes, bytes | None]) -> bytes:
        update = tree.compute_update(changes)
        for key, record in update.records():
            if record is None:
                self.records.pop(key, None)
            else:
                self.records[key] = record
        tree.apply_update(update)
        return update.root


def test_empty_state_root_is_zero() -> None:
    assert compute_root({}) == EMPTY_ROOT == bytes(32)
    assert SparseMerkleTree(lambda _k: None).root() == EMPTY_ROOT


def test_one_key_root_is_its_leaf_hash() -> None:
    key, value = output_key(b"\x01" * 32), b"value"
    assert compute_root({key: value}) == sha(b"\x00" + sha(key) + sha(value))


def test_golden_root() -> None:
    """Pins the exact hashing: a change here is a consensus break."""
    state = {output_key(bytes([i]) * 32): b"v%d" % i for i in range(5)}
    assert compute_root(state) == reference_root(state)
    assert (
        compute_root(state).hex()
        == "2636ef7336eb4e6c3f9fad957a328f5039ffb4d7ef21b92412e90d32441c2d89"
    )


def apply_changes(state: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> None:
    """What ``changes`` does to a plain dict of the state (``None`` deletes)."""
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


@pytest.mark.parametrize("seed", range(6))
def test_incremental_updates_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read, cache_nodes=rng.choice([8, 64, 1 << 20]))
    state: dict[bytes, bytes] = {}
    for _ in range(25):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randrange(0, 30)):
            key = output_key(bytes([rng.randrange(80)]))
            if rng.random() < 0.35:
                changes[key] = None
            else:
                changes[key] = rng.randbytes(rng.randrange(0, 9))
        root = nodes.write(tree, changes)
        apply_changes(state, changes)
        assert root == tree.root() == reference_root(state)
        # a fresh tree over the same records agrees (nothing lives only in the cache)
        assert SparseMerkleTree(nodes.read).root() == root


def test_deleting_everything_leaves_no_records() -> None:
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read)
    keys = [output_key(bytes([i])) for i in range(50)]
    nodes.write(tree, dict.fromkeys(keys, b"x"))
    assert len(nodes.records) >= 50
    assert nodes.write(tree, dict.fromkeys(keys)) == EMPTY_ROOT
    assert nodes.records == {}


def test_compute_update_is_pure_until_applied() -> None:
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read)
    nodes.write(tree, {output_key(b"a"): b"1"})
    before = tree.root()
    update = tree.compute_update({output_key(b"b"): b"2"})
    assert update.root != before
    assert tree.root() == before


def test_an_update_applied_out_of_turn_is_refused() -> None:
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read)
    first = tree.compute_update({output_key(b"a"): b"1"})
    second = tree.compute_update({output_key(b"b"): b"2"})
    tree.apply_update(first)
    with pytest.raises(StateRootError):
        tree.apply_update(second)


def test_node_records_round_trip_and_corruption_is_detected() -> None:
    leaf = Leaf(sha(b"k"), sha(b"v"))
    assert decode_node(encode_node(leaf)) == leaf
    assert decode_node(encode_node(sha(b"n"))) == sha(b"n")
    for bad in [b"", b"\x02" + bytes(32), b"\x00" + bytes(32), b"\x01" + bytes(31)]:
        with pytest.raises(StateRootError):
            decode_node(bad)


def build(state: dict[bytes, bytes]) -> SparseMerkleTree:
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read)
    nodes.write(tree, dict(state))
    return tree


@pytest.mark.parametrize("size", [0, 1, 2, 3, 50, 300])
def test_inclusion_and_non_inclusion_proofs_verify(size: int) -> None:
    state = {output_key(b"%d" % i): b"value %d" % i for i in range(size)}
    tree = build(state)
    root = tree.root()
    for key, value in state.items():
        proof = tree.prove(key)
        assert verify_state_proof(root, key, value, proof)
        assert not verify_state_proof(root, key, value + b"!", proof)
        assert not verify_state_proof(root, key, None, proof)
        assert StateProof.decode(proof.encode()) == proof
    kinds = set()
    for i in range(size, size + 60):
        absent = output_key(b"%d" % i)
        proof = tree.prove(absent)
        kinds.add(proof.leaf_path is None)
        assert verify_state_proof(root, absent, None, proof)
        assert not verify_state_proof(root, absent, b"anything", proof)
    if size >= 2:
        assert kinds == {True, False}  # both empty-subtree and other-leaf non-inclusion seen


def test_tampered_proofs_fail() -> None:
    state = {output_key(b"%d" % i): b"v%d" % i for i in range(40)}
    tree = build(state)
    root = tree.root()
    key = output_key(b"7")
    proof = tree.prove(key)
    assert verify_state_proof(root, key, b"v7", proof)
    for i in range(len(proof.siblings)):
        siblings = list(proof.siblings)
        siblings[i] = sha(siblings[i])
        tampered = StateProof(tuple(siblings), proof.leaf_path, proof.leaf_value_hash)
        assert not verify_state_proof(root, key, b"v7", tampered)
    assert not verify_state_proof(
        root, key, b"v7", StateProof(proof.siblings[1:], proof.leaf_path, proof.leaf_value_hash)
    )
    assert not verify_state_proof(
        root,
        key,
        b"v7",
        StateProof((*proof.siblings, bytes(32)), proof.leaf_path, proof.leaf_value_hash),
    )
    # the proof of one key does not prove another
    assert not verify_state_proof(root, output_key(b"8"), b"v7", proof)
    # an inclusion proof cannot be passed off as non-inclusion of the same key
    assert root_from_proof(key, None, proof) is None
    # a non-inclusion claim must end at a leaf on the key's own path
    other = tree.prove(output_key(b"9"))
    assert not verify_state_proof(root, key, None, other)
    # half a leaf is malformed
    assert root_from_proof(key, None, StateProof(proof.siblings, proof.leaf_path, None)) is None


def test_node_cache_stays_bounded_and_keeps_the_top_levels() -> None:
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read, cache_nodes=64)
    state = {output_key(b"%d" % i): b"v" for i in range(500)}
    for start in range(0, 500, 10):  # small updates, so writes never exceed the cap alone
        nodes.write(tree, {k: state[k] for k in list(state)[start : start + 10]})
    root = tree.root()
    for key in state:
        assert verify_state_proof(root, key, b"v", tree.prove(key))
        assert len(tree._cache) <= 64
    assert 1 in tree._cache  # the root survives eviction
    assert root == reference_root(state)


def _position(key: bytes) -> int:
    return int.from_bytes(key, "big")


@pytest.mark.parametrize("seed", range(4))
def test_interior_nodes_off_every_fourth_depth_have_no_record_and_the_records_alone_prove_every_key(
    seed: int,
) -> None:
    """Inserts, updates and deletes over few keys, so leaves keep moving between
    stored and unstored depths; a stale leaf record left at an unstored position
    would make a cold tree prove a wrong path."""
    rng = random.Random(seed)
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read, cache_nodes=rng.choice([8, 1 << 20]))
    state: dict[bytes, bytes] = {}
    for _ in range(40):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randrange(1, 12)):
            key = output_key(bytes([rng.randrange(40)]))
            changes[key] = None if rng.random() < 0.4 else rng.randbytes(3)
        root = nodes.write(tree, changes)
        apply_changes(state, changes)
        assert root == reference_root(state)
        for key, record in nodes.records.items():
            if not stores_interior(_position(key)):
                assert isinstance(decode_node(record), Leaf), "unstored-depth interior record"
        cold = SparseMerkleTree(nodes.read, cache_nodes=8)
        assert cold.root() == root
        for i in range(40):
            key = output_key(bytes([i]))
            assert verify_state_proof(root, key, state.get(key), cold.prove(key))


def test_a_split_leaf_at_an_unstored_depth_loses_its_record() -> None:
    """A leaf alone at depth 1 becomes an interior node when a key joins it."""
    keys = [output_key(b"%d" % i) for i in range(200)]
    by_bit: dict[int, list[bytes]] = {0: [], 1: []}
    for key in keys:
        by_bit[sha(key)[0] >> 7].append(key)
    lone, *_ = by_bit[1]
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read)
    nodes.write(tree, {lone: b"a", by_bit[0][0]: b"b", by_bit[0][1]: b"c"})
    assert isinstance(decode_node(nodes.records[bytes([3])]), Leaf)  # position 3, depth 1
    update = tree.compute_update({by_bit[1][1]: b"d"})
    assert (bytes([3]), None) in update.records()
    nodes.records.clear()  # replay from scratch through records only
    tree = SparseMerkleTree(nodes.read)
    nodes.write(tree, {lone: b"a", by_bit[0][0]: b"b", by_bit[0][1]: b"c"})
    root = nodes.write(tree, {by_bit[1][1]: b"d"})
    assert bytes([3]) not in nodes.records
    assert SparseMerkleTree(nodes.read).prove(lone) is not None
    state = {lone: b"a", by_bit[0][0]: b"b", by_bit[0][1]: b"c", by_bit[1][1]: b"d"}
    assert root == reference_root(state)
    cold = SparseMerkleTree(nodes.read)
    assert all(verify_state_proof(root, k, v, cold.prove(k)) for k, v in state.items())


@pytest.mark.parametrize("position", [2, 5, 12])
def test_an_interior_record_at_an_unstored_depth_is_refused_as_an_older_layout(
    position: int,
) -> None:
    """Depths 1, 2 and 3: schema 2 stored interior records at all three, schema 3 at 2."""
    nodes = DictNodes()
    tree = SparseMerkleTree(nodes.read)
    state: dict[bytes, bytes | None] = {output_key(b"%d" % i): b"v" for i in range(20)}
    nodes.write(tree, state)
    nodes.records[bytes([position])] = encode_node(sha(b"stale"))
    cold = SparseMerkleTree(nodes.read)
    with pytest.raises(StateRootError, match="older layout"):
        for key in state:
            cold.prove(key)
