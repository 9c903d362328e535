"""The state root: a sparse Merkle tree over the state, with shortcut leaves.

Why a sparse Merkle tree: the root must be the same on every node for the same
state, whatever order the changes came in, and updating it must cost in
proportion to the block's changes, not to the size of the state. A tree whose
shape depends only on the *set* of keys gives both: each key sits at a fixed
256-bit path, and a block touching ``m`` of ``N`` keys rehashes about
``m * log2(N / m) + m`` nodes. It also gives short proofs that a key holds a
value, or holds none.

Exact hashing (also in docs/storage.md)::

    path(key)          = SHA-256(key)                 # key = the full state key
    value_hash(value)  = SHA-256(value)
    EMPTY              = 32 zero bytes                # a subtree with no keys
    leaf(key, value)   = SHA-256(0x00 || path(key) || value_hash(value))
    node(left, right)  = SHA-256(0x01 || left || right)

The hash of a subtree is ``EMPTY`` if it holds no key, ``leaf(k, v)`` if it holds
exactly one key ``k`` (at whatever depth: the "shortcut" leaf is stored at the
shallowest position where it is alone), and ``node(hash(left), hash(right))``
otherwise, where the left subtree holds the keys whose next path bit is 0. The
root is the hash of the whole tree, so the empty state's root is ``EMPTY``.

Storage: a node lives at its *position*, the heap index ``2**depth + prefix``
(the root is 1, the children of ``p`` are ``2p`` and ``2p + 1``). A position
record is ``0x00 || path || value_hash`` for a leaf (at any depth) or
``0x01 || hash`` for an interior node at a depth that is a multiple of
``INTERIOR_RECORD_DEPTHS`` (4); an empty subtree has no record, and neither
has an interior node at any other depth. ``compute_update`` is pure: it
returns the new root and the position records to write (``None`` = delete),
which the store writes in the block's batch and then hands back to
``apply_update`` to refresh the node cache.

Why interior nodes are stored only every fourth level: every changed key
rewrites the interior nodes on its path, about ``log2(N)`` of them, and their
records were most of what a block wrote and most of the records LevelDB's
compaction then rewrote again and again (its cost goes by records more than
by bytes). An unstored interior node is ``node(left, right)`` of its two
children, each either stored or unstored in turn, down to the next stored
depth at most three levels below. Reading one on a cache miss costs up to 14
record reads instead of one, once, into the node cache; writing costs
nothing. Schema 3 kept every even depth, schema 2 every depth
(docs/storage.md, "How nodes are stored").
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Final

from ledger.codec import Bytes32, MaxLen, Record

if TYPE_CHECKING:
    from ledger.native._smt import NodeCache

HASH_BYTES = 32
PATH_BITS = 256
EMPTY_HASH: Final = bytes(HASH_BYTES)
EMPTY_ROOT: Final = EMPTY_HASH
ROOT_POSITION = 1
DEFAULT_CACHE_NODES = 1 << 20
"""Nodes the C walk's ``NodeCache`` keeps: a 48-byte slot each (a leaf 64 bytes
more) in a table at most 3/4 full, so ~120 MB at most. A walk caches about
``4 N`` nodes for ``N`` keys (3.7 N at 100k), so ~250k keys stay cached whole."""
PYTHON_CACHE_NODES = 1 << 19
"""The Python walk's dict spends ~240 B a node, so it keeps half as many (~125 MB)."""

_LEAF_TAG = b"\x00"
_NODE_TAG = b"\x01"
_sha256 = hashlib.sha256


class StateRootError(RuntimeError):
    """Stored tree nodes are inconsistent, or an update is applied out of turn."""


def key_path(key: bytes) -> bytes:
    """The 256-bit path of a state key."""
    return _sha256(key).digest()


def value_hash(value: bytes) -> bytes:
    return _sha256(value).digest()


def leaf_hash(path: bytes, value_digest: bytes) -> bytes:
    return _sha256(_LEAF_TAG + path + value_digest).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE_TAG + left + right).digest()


class Leaf:
    """A subtree holding exactly one key: its path, its value's hash and its own hash."""

    __slots__ = ("hash", "path", "path_int", "value_hash")

    def __init__(self, path: bytes, value_digest: bytes) -> None:
        self.path = path
        self.path_int = int.from_bytes(path, "big")
        self.value_hash = value_digest
        self.hash = _sha256(_LEAF_TAG + path + value_digest).digest()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Leaf)
            and self.path == other.path
            and self.value_hash == other.value_hash
        )

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"Leaf(path={self.path.hex()[:16]}..., hash={self.hash.hex()[:16]}...)"


Node = Leaf | bytes | None
"""A subtree at a position: a ``Leaf``, an interior node's hash, or ``None`` (empty)."""


def subtree_hash(node: Node) -> bytes:
    if node is None:
        return EMPTY_HASH
    if isinstance(node, Leaf):
        return node.hash
    return node


INTERIOR_RECORD_DEPTHS: Final = 4
"""Interior nodes have records at the depths that are multiples of this."""
_UNSTORED_DEPTH_BITS: Final = INTERIOR_RECORD_DEPTHS - 1
"""``depth & _UNSTORED_DEPTH_BITS`` is nonzero at a depth without interior records."""


def stores_interior(position: int) -> bool:
    """Whether an interior node at ``position`` has a record: only at depths that
    are multiples of ``INTERIOR_RECORD_DEPTHS`` (depth = bit length - 1)."""
    return not (position.bit_length() - 1) & _UNSTORED_DEPTH_BITS


def position_key(position: int) -> bytes:
    """The storage key suffix of a position: its minimal big-endian bytes."""
    return position.to_bytes((position.bit_length() + 7) // 8, "big")


def encode_node(node: Leaf | bytes) -> bytes:
    if isinstance(node, Leaf):
        return _LEAF_TAG + node.path + node.value_hash
    return _NODE_TAG + node


def decode_node(record: bytes) -> Leaf | bytes:
    if len(record) == 1 + 2 * HASH_BYTES and record[:1] == _LEAF_TAG:
        return Leaf(record[1 : 1 + HASH_BYTES], record[1 + HASH_BYTES :])
    if len(record) == 1 + HASH_BYTES and record[:1] == _NODE_TAG:
        return record[1:]
    raise StateRootError(f"corrupt tree node record of {len(record)} bytes")


@dataclass(frozen=True, slots=True)
class SmtUpdate:
    """The result of ``compute_update``: the new root and the node records to write."""

    base_version: int
    root: bytes
    node_writes: dict[int, Leaf | bytes | None] = field(repr=False)
    replaced_leaves: frozenset[int] = field(default=frozenset(), repr=False)
    """Positions without interior records where a stored leaf became an interior node."""
    empty_positions: tuple[int, ...] = field(default=(), repr=False)
    """The empty children of the subtrees the update built. They have no record,
    so a walk past one would read nothing from the store, and at a depth without
    interior records read its children as well: ``apply_update`` caches them as
    empty instead (twentieth session's profile: 4 % of a warm node's time)."""

    def records(self, key_prefix: bytes = b"") -> list[tuple[bytes, bytes | None]]:
        """(``key_prefix`` + position key, record or ``None``) for every changed
        position that has, or had, a record."""
        if _native is not None:
            return _native.records(self.node_writes, self.replaced_leaves, key_prefix)  # type: ignore[no-any-return]
        return python_records(self, key_prefix)


def python_records(update: SmtUpdate, key_prefix: bytes = b"") -> list[tuple[bytes, bytes | None]]:
    """``SmtUpdate.records`` in Python: the specification of ``ledger/native``'s."""
    out: list[tuple[bytes, bytes | None]] = []
    append = out.append
    for pos, node in update.node_writes.items():
        bits = pos.bit_length()
        key = key_prefix + pos.to_bytes((bits + 7) >> 3, "big")
        if node is None:
            append((key, None))
        elif isinstance(node, Leaf):
            append((key, _LEAF_TAG + node.path + node.value_hash))
        elif not (bits - 1) & _UNSTORED_DEPTH_BITS:
            append((key, _NODE_TAG + node))
        elif pos in update.replaced_leaves:
            append((key, None))
    return out


_MISSING: Final = object()
_Item = tuple[int, bytes, bytes | None]
"""A change: (path as int, path, value hash or ``None`` to delete)."""


def _load_native_update() -> ModuleType | None:
    """``ledger.native._smt`` once ``python -m ledger.native.build`` has built it,
    unless ``VEIL_SMT_BACKEND=python`` asks for this module's walk."""
    if os.environ.get(SMT_BACKEND_ENV) == "python":
        return None
    try:
        from ledger.native import _smt  # noqa: PLC0415 (optional, built at install)
    except ImportError:
        return None
    if getattr(_smt, "INTERIOR_RECORD_DEPTHS", None) != INTERIOR_RECORD_DEPTHS:
        # A build from another layout would write records this module cannot read.
        raise ImportError(
            "ledger.native._smt was built for another tree layout: run `make install` again"
        )
    _smt.setup(Leaf, StateRootError)
    return _smt


SMT_BACKEND_ENV = "VEIL_SMT_BACKEND"
_native = _load_native_update()
NATIVE_WALK: Final = _native is not None
"""Whether ``compute_update`` and ``SmtUpdate.records`` run in C
(``ledger/native/smt_update.c``): built, and not turned off with ``VEIL_SMT_BACKEND``."""


class SparseMerkleTree:
    """The incremental state tree over a node source, with a bounded node cache.

    ``read_record(position_key)`` returns the stored record of a position or
    ``None``; it must reflect exactly the updates passed to ``apply_update``.
    """

    def __init__(
        self,
        read_record: Callable[[bytes], bytes | None],
        *,
        cache_nodes: int | None = None,
        native: bool = True,
    ) -> None:
        """``native=False``: walk in Python even when the C walk is built (tests,
        benchmarks). ``cache_nodes`` defaults to ``DEFAULT_CACHE_NODES`` for the C
        walk and ``PYTHON_CACHE_NODES`` for the Python one: the same memory."""
        self._read_record = read_record
        self._version = 0
        self._native = _native if native else None
        if cache_nodes is None:
            cache_nodes = DEFAULT_CACHE_NODES if self._native is not None else PYTHON_CACHE_NODES
        self._cache_nodes = cache_nodes
        # The C walk reads nodes straight out of its own compact table
        # (ledger/native/node_table.h says why); the Python walk keeps a dict.
        self._cache: dict[int, Node] | NodeCache = (
            {} if self._native is None else self._native.NodeCache()
        )

    @property
    def version(self) -> int:
        """How many updates have been applied through this object."""
        return self._version

    def _load(self, position: int) -> Node:
        node = self._cache.get(position, _MISSING)
        if node is _MISSING:
            record = self._read_record(position_key(position))
            if record is not None:
                node = decode_node(record)
                if type(node) is bytes and not stores_interior(position):
                    raise StateRootError(
                        f"an interior node is stored at position {position}, a depth "
                        "without interior records: "
                        "tree records of an older layout"
                    )
            elif stores_interior(position):
                node = None
            else:
                node = self._unstored_interior(position)
            if len(self._cache) >= self._cache_nodes:
                self._evict()
            self._cache[position] = node
        return node  # type: ignore[return-value]

    def _unstored_interior(self, position: int) -> Node:
        """The node at a position without a record, at a depth without interior
        records: empty, or the interior node over its two children."""
        left = self._load(position << 1)
        right = self._load(position << 1 | 1)
        if left is None and right is None:
            return None
        if (left is None and type(right) is Leaf) or (right is None and type(left) is Leaf):
            raise StateRootError(f"a lone leaf below position {position}: corrupt nodes")
        return _sha256(_NODE_TAG + subtree_hash(left) + subtree_hash(right)).digest()

    def root(self) -> bytes:
        return subtree_hash(self._load(ROOT_POSITION))

    def clear_cache(self) -> None:
        self._cache.clear()

    def _evict(self) -> None:
        """Make room: keep only the top levels, which every update walks through.

        The top ``k`` levels (at most a quarter of the cache, and no deeper than
        depth 15) are kept, everything deeper is dropped and reloaded on demand.
        The cache is pruned in place so callers holding it stay consistent.
        """
        keep_below = 1 << min(16, max(1, self._cache_nodes.bit_length() - 3))
        cache = self._cache
        if not isinstance(cache, dict):
            cache.keep_below(keep_below)
            return
        kept = {pos: node for pos, node in cache.items() if pos < keep_below}
        cache.clear()
        cache.update(kept)

    # --- updates ------------------------------------------------------------

    def compute_update(self, changes: Mapping[bytes, bytes | None]) -> SmtUpdate:
        """The root after ``changes`` (key -> value, ``None`` deletes) and the nodes to write.

        Pure: nothing is cached or stored until ``apply_update``.
        """
        cache = self._cache
        if not isinstance(cache, dict) and self._native is not None and changes:
            root_node, native_writes, native_replaced, native_empties = self._native.update(
                cache, self._load, changes
            )
            return SmtUpdate(
                self._version,
                subtree_hash(root_node),
                native_writes,
                frozenset(native_replaced),
                tuple(native_empties),
            )
        items: list[_Item] = []
        for key, value in changes.items():
            path = _sha256(key).digest()
            digest = None if value is None else _sha256(value).digest()
            items.append((int.from_bytes(path, "big"), path, digest))
        items.sort(key=_first)
        writes: dict[int, Node] = {}
        if not items:
            return SmtUpdate(self._version, self.root(), {})
        paths = [item[0] for item in items]
        replaced: list[int] = []
        empties: list[int] = []
        root = self._load(ROOT_POSITION)
        new_root = self._update(ROOT_POSITION, 0, root, items, paths, writes, replaced, empties)
        return SmtUpdate(
            self._version, subtree_hash(new_root), writes, frozenset(replaced), tuple(empties)
        )

    def apply_update(self, update: SmtUpdate) -> None:
        """Record that ``update``'s node writes are now stored (refreshes the cache)."""
        if update.base_version != self._version:
            raise StateRootError(
                f"update computed at version {update.base_version}, tree is at {self._version}"
            )
        cache = self._cache
        written = len(update.node_writes) + len(update.empty_positions)
        if len(cache) + written > self._cache_nodes:
            self._evict()
        # Emptied positions are cached as None: a walk past one reads no record.
        if not isinstance(cache, dict):
            cache.apply(update.node_writes, update.empty_positions)
        else:
            cache.update(update.node_writes)
            for pos in update.empty_positions:
                cache[pos] = None
        self._version += 1

    def _update(  # noqa: PLR0917 (hot recursive path: positional on purpose)
        self,
        pos: int,
        depth: int,
        node: Node,
        items: list[_Item],
        paths: list[int],
        writes: dict[int, Node],
        replaced: list[int],
        empties: list[int],
        lo: int = 0,
        hi: int = -1,
    ) -> Node:
        if hi < 0:
            hi = len(items)
        if node is None or isinstance(node, Leaf):
            if node is None:
                merged = [item for item in items[lo:hi] if item[2] is not None]
            else:
                j = bisect_left(paths, node.path_int, lo, hi)
                if j < hi and paths[j] == node.path_int:
                    merged = [item for item in items[lo:hi] if item[2] is not None]
                else:
                    merged = [item for item in items[lo:j] if item[2] is not None]
                    merged.append((node.path_int, node.path, node.value_hash))
                    merged.extend(item for item in items[j:hi] if item[2] is not None)
            merged_paths = [item[0] for item in merged]
            built = _build(pos, depth, merged, merged_paths, 0, len(merged), writes, empties)
            if built is not None or node is not None:
                writes[pos] = built
                if node is not None and type(built) is bytes and depth & _UNSTORED_DEPTH_BITS:
                    replaced.append(pos)  # its leaf record must go: see SmtUpdate.records
            return built
        # An interior node: descend into the side(s) with changes.
        mid = bisect_left(paths, ((pos << 1 | 1) - (2 << depth)) << (PATH_BITS - 1 - depth), lo, hi)
        left_pos = pos << 1
        right_pos = left_pos | 1
        cache = self._cache
        left = cache.get(left_pos, _MISSING)
        if left is _MISSING:
            left = self._load(left_pos)
        right = cache.get(right_pos, _MISSING)
        if right is _MISSING:
            right = self._load(right_pos)
        if mid > lo:
            left = self._update(
                left_pos,
                depth + 1,
                left,  # type: ignore[arg-type]
                items,
                paths,
                writes,
                replaced,
                empties,
                lo,
                mid,
            )
        if hi > mid:
            right = self._update(
                right_pos,
                depth + 1,
                right,  # type: ignore[arg-type]
                items,
                paths,
                writes,
                replaced,
                empties,
                mid,
                hi,
            )
        result: Node
        if left is None:
            if right is None:
                result = None
            elif type(right) is Leaf:
                writes[right_pos] = None
                result = right
            else:
                result = _sha256(_NODE_TAG + EMPTY_HASH + right).digest()  # type: ignore[operator]
        elif right is None:
            if type(left) is Leaf:
                writes[left_pos] = None
                result = left
            else:
                result = _sha256(_NODE_TAG + left + EMPTY_HASH).digest()  # type: ignore[operator]
        else:
            left_hash = left.hash if type(left) is Leaf else left
            right_hash = right.hash if type(right) is Leaf else right
            result = _sha256(_NODE_TAG + left_hash + right_hash).digest()  # type: ignore[operator]
        writes[pos] = result
        return result

    # --- proofs -------------------------------------------------------------

    def prove(self, key: bytes) -> StateProof:
        """A proof of ``key``'s current value, or of its absence."""
        path_int = int.from_bytes(_sha256(key).digest(), "big")
        siblings: list[bytes] = []
        pos, depth = ROOT_POSITION, 0
        node = self._load(pos)
        while node is not None and not isinstance(node, Leaf):
            bit = (path_int >> (PATH_BITS - 1 - depth)) & 1
            siblings.append(subtree_hash(self._load((pos << 1) | (bit ^ 1))))
            pos = (pos << 1) | bit
            depth += 1
            node = self._load(pos)
            if depth > PATH_BITS:
                raise StateRootError("tree deeper than 256 levels: corrupt nodes")
        if node is None:
            return StateProof(tuple(siblings), None, None)
        return StateProof(tuple(siblings), node.path, node.value_hash)


def _first(item: _Item) -> int:
    return item[0]


def _build(  # noqa: PLR0917 (hot recursive path: positional on purpose)
    pos: int,
    depth: int,
    items: list[_Item],
    paths: list[int],
    lo: int,
    hi: int,
    writes: dict[int, Node],
    empties: list[int],
) -> Node:
    """The canonical subtree at ``pos`` holding exactly ``items[lo:hi]`` (all inserts);
    its empty children go to ``empties``."""
    count = hi - lo
    if count == 0:
        return None
    if count == 1:
        _, path, digest = items[lo]
        return Leaf(path, digest)  # type: ignore[arg-type]
    prefix = (pos - (1 << depth)) << (PATH_BITS - depth)
    mid = bisect_left(paths, prefix | (1 << (PATH_BITS - 1 - depth)), lo, hi)
    left_pos = pos << 1
    left = _build(left_pos, depth + 1, items, paths, lo, mid, writes, empties)
    right = _build(left_pos | 1, depth + 1, items, paths, mid, hi, writes, empties)
    if left is None:
        empties.append(left_pos)
    else:
        writes[left_pos] = left
    if right is None:
        empties.append(left_pos | 1)
    else:
        writes[left_pos | 1] = right
    return _sha256(_NODE_TAG + subtree_hash(left) + subtree_hash(right)).digest()


def compute_root(state: Mapping[bytes, bytes]) -> bytes:
    """The state root of a whole state, from scratch (the definition, for checks and tests)."""
    tree = SparseMerkleTree(lambda _key: None)
    return tree.compute_update(state).root


# --- proofs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateProof(Record):
    """Proof that a key holds a value, or none, under a state root.

    ``siblings`` are the hashes beside the key's path, root first. The path ends
    at an empty subtree (``leaf_path is None``) or at a leaf: the key's own leaf
    (inclusion), or another key's leaf sharing the path so far (non-inclusion).
    """

    siblings: Annotated[tuple[Bytes32, ...], MaxLen(PATH_BITS)]
    leaf_path: Bytes32 | None
    leaf_value_hash: Bytes32 | None


def root_from_proof(key: bytes, value: bytes | None, proof: StateProof) -> bytes | None:
    """The root under which ``proof`` shows ``key`` -> ``value`` (``None``: absent).

    Returns ``None`` if the proof cannot show that at all.
    """
    if len(proof.siblings) > PATH_BITS or (proof.leaf_path is None) != (
        proof.leaf_value_hash is None
    ):
        return None
    path = _sha256(key).digest()
    path_int = int.from_bytes(path, "big")
    depth = len(proof.siblings)
    if proof.leaf_path is None or proof.leaf_value_hash is None:
        if value is not None:
            return None
        current = EMPTY_HASH
    else:
        if len(proof.leaf_path) != HASH_BYTES or len(proof.leaf_value_hash) != HASH_BYTES:
            return None
        if value is not None:
            if proof.leaf_path != path or proof.leaf_value_hash != value_hash(value):
                return None
        else:
            other = int.from_bytes(proof.leaf_path, "big")
            if other == path_int or (other ^ path_int) >> (PATH_BITS - depth) != 0:
                return None
        current = leaf_hash(proof.leaf_path, proof.leaf_value_hash)
    for index in range(depth - 1, -1, -1):
        sibling = proof.siblings[index]
        if len(sibling) != HASH_BYTES:
            return None
        if (path_int >> (PATH_BITS - 1 - index)) & 1:
            current = node_hash(sibling, current)
        else:
            current = node_hash(current, sibling)
    return current


def verify_state_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True only if, under ``root``, ``key`` holds ``value`` (or is absent when ``None``)."""
    return root_from_proof(key, value, proof) == root
