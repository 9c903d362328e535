"""The tx-root Merkle tree: RFC 6962 vectors, inclusion proofs, and no duplicate-leaf ambiguity."""

from __future__ import annotations

import hashlib

import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_inclusion_proof,
    verify_inclusion,
)

# Certificate Transparency's merkle_tree_test.cc inputs and roots (RFC 6962 hashing).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written as the recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


@pytest.mark.parametrize("count", range(1, len(CT_LEAVES) + 1))
def test_roots_match_the_certificate_transparency_vectors(count: int) -> None:
    assert merkle_root(CT_LEAVES[:count]).hex() == CT_ROOTS[count - 1]


def test_empty_root_is_the_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("count", range(1, 40))
def test_root_matches_the_recursive_definition(count: int) -> None:
    leaves = [i.to_bytes(4, "big") * (i % 3 + 1) for i in range(count)]
    assert merkle_root(leaves) == reference_root(leaves)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) != leaf_hash(left + right)
    # a two-leaf tree is not the one-leaf tree of its concatenated children
    assert merkle_root([b"a", b"b"]) != merkle_root([left + right])


def test_duplicating_the_last_leaf_changes_the_root() -> None:
    """CVE-2012-2459: with Bitcoin's rule [a, b, c] and [a, b, c, c] collide."""
    for count in range(1, 17):
        leaves = [bytes([i]) for i in range(count)]
        assert merkle_root(leaves) != merkle_root([*leaves, leaves[-1]])
    assert merkle_root([b"a", b"b", b"c"]) != merkle_root([b"a", b"b", b"c", b"c"])


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 33])
def test_every_inclusion_proof_verifies(count: int) -> None:
    leaves = [b"tx-%d" % i for i in range(count)]
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, index)
        assert len(proof) <= max(1, (count - 1).bit_length())
        assert verify_inclusion(root, leaf, index, count, proof)


@pytest.mark.parametrize("count", [2, 3, 5, 8, 11])
def test_tampered_proofs_fail(count: int) -> None:
    leaves = [b"tx-%d" % i for i in range(count)]
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, index)
        assert not verify_inclusion(root, leaf + b"!", index, count, proof)
        assert not verify_inclusion(root, leaf, (index + 1) % count, count, proof)
        # (the tree size is not bound by the root alone: the block header carries the tx count)
        assert not verify_inclusion(root, leaf, index, count, proof[:-1])
        assert not verify_inclusion(root, leaf, index, count, (*proof, proof[-1]))
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = bytes(32)
            assert not verify_inclusion(root, leaf, index, count, bad)
        assert not verify_inclusion(bytes(32), leaf, index, count, proof)


def test_malformed_proofs_are_rejected_not_raised() -> None:
    leaves = [b"a", b"b", b"c"]
    proof = inclusion_proof(leaves, 0)
    assert root_from_inclusion_proof(b"a", 3, 3, proof) is None
    assert root_from_inclusion_proof(b"a", -1, 3, proof) is None
    assert root_from_inclusion_proof(b"a", 0, 3, [b"short", *proof[1:]]) is None
    assert root_from_inclusion_proof(b"a", 0, 0, proof) is None


def test_inclusion_proof_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        inclusion_proof([b"a"], 1)
    with pytest.raises(IndexError):
        inclusion_proof([], 0)
