"""Binary Merkle trees over ordered leaves (RFC 6962 / RFC 9162), used for a block's tx root.

Why this construction: leaves and interior nodes are hashed under different
one-byte prefixes (``0x00`` for a leaf, ``0x01`` for a node), so a node can never
be passed off as a leaf, and an odd node is *promoted* to the next level rather
than paired with a copy of itself. Duplicating the last leaf (Bitcoin's rule)
gives the lists ``[a, b, c]`` and ``[a, b, c, c]`` the same root (CVE-2012-2459);
here every list of leaves has its own root, and the number of leaves is part of
what an inclusion proof is checked against.

* ``leaf_hash(x) = SHA-256(0x00 || x)``
* ``node_hash(l, r) = SHA-256(0x01 || l || r)``
* the root of ``n > 1`` leaves splits them at ``k``, the largest power of two
  below ``n``: ``node_hash(root(leaves[:k]), root(leaves[k:]))``
* the root of no leaves is ``SHA-256(b"")``.

These are exactly the Merkle Tree Hash and audit paths of RFC 6962 section 2.1,
so the Certificate Transparency test vectors apply (see the unit tests).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root of the empty list (RFC 6962: the hash of the empty string)."""


def leaf_hash(leaf: bytes) -> bytes:
    """The hash of one leaf, domain-separated from interior nodes."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node from its two children's hashes."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 Merkle Tree Hash of ``leaves``, in O(n) hashes.

    Pairing neighbours level by level and promoting an odd last node unchanged
    builds the same tree as RFC 6962's largest-power-of-two split.
    """
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(leaf) for leaf in leaves]
    return _root_of_hashes(level)


def _root_of_hashes(level: list[bytes]) -> bytes:
    sha256 = hashlib.sha256
    while len(level) > 1:
        paired = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """The audit path of ``leaves[index]`` (RFC 6962 PATH), nearest sibling first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    hashes = [leaf_hash(leaf) for leaf in leaves]
    path: list[bytes] = []
    _path(hashes, index, path)
    return tuple(path)


def _path(hashes: list[bytes], index: int, out: list[bytes]) -> None:
    n = len(hashes)
    if n <= 1:
        return
    k = _largest_power_of_two_below(n)
    if index < k:
        _path(hashes[:k], index, out)
        out.append(_root_of_hashes(hashes[k:]))
    else:
        _path(hashes[k:], index - k, out)
        out.append(_root_of_hashes(hashes[:k]))


def root_from_inclusion_proof(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root that ``proof`` implies for ``leaf`` at ``index``, or ``None`` if malformed.

    This is the verification algorithm of RFC 9162 section 2.1.3.2.
    """
    if not 0 <= index < tree_size:
        return None
    fn, sn = index, tree_size - 1
    result = leaf_hash(leaf)
    for sibling in proof:
        if len(sibling) != HASH_BYTES or sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return result


def verify_inclusion(
    root: bytes, leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bool:
    """True only if ``leaf`` is leaf number ``index`` of the ``tree_size``-leaf tree ``root``."""
    return root_from_inclusion_proof(leaf, index, tree_size, proof) == root
