"""The ``Store`` interface and its in-memory implementation.

Why one code path for both stores: ``KeyValueStore`` holds every rule of
storage (key layout, height checks, index upkeep, the state tree) and writes
each block as a single atomic batch to an ordered key-value backend. The
``MemoryStore`` backend is a dict; ``ledger.leveldb_store.LevelDBStore`` is
plyvel with ``write_batch(sync=True)``. So tests and the simulator exercise the
same logic a node runs, and a crash can only ever leave a whole block or none.

Heights: the first block committed is height 0 (genesis: its block bytes may
be the genesis file, its certificate empty); every later commit must be
exactly ``height() + 1``. ``height()`` is -1 for an empty store.

A block is written as one ``BlockWrite`` record: the block, its commit
certificate (opaque bytes), the consensus metadata and the rejected requests
of its batch, the state delta and the index changes, all in one synced batch.

Key layout (one byte names the table; ``u64`` is 8 bytes big-endian)::

    0x00 "schema"           -> encode_value(("veil/ledger-store", SCHEMA_VERSION))
    0x00 "tip"              -> encode_value((height, block_hash, state_root))
    "B" u64 height          -> block bytes
    "C" u64 height          -> commit certificate bytes
    "M" u64 height          -> BlockMetadata (ledger.batch)
    "R" u64 height          -> RejectedList: the batch's requests not in the block
    "K" u64 height          -> block hash
    "H" block_hash          -> u64 height
    "T" tx_id               -> encode_value((height, index))
    "O" len(owner) owner output_id -> b""        (outputs by owner)
    "S" state_key           -> value             (the state itself)
    "N" position            -> tree node record  (see ledger.state_root)
    "U", "V", 0x00 "history_floor" -> the undo log of recent heights (ledger.state_history)

``state_at(h)`` reads the state as it was after block h, for every h in
``[history_floor(), height()]``; ``history_heights`` sets how far back.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Final, NamedTuple, Protocol, runtime_checkable

from ledger.batch import BlockMetadata, RejectedList, RejectedRequest, decode_rejected_list
from ledger.codec import DecodeError, decode_value, encode_value
from ledger.state import StateReader, StateView, check_state_key, namespace_prefix
from ledger.state_history import (
    CHANGED_PREFIX,
    DEFAULT_STATE_HISTORY_HEIGHTS,
    UNDO_PREFIX,
    HistoryCorruptError,
    StateAt,
    floor_write,
    next_floor,
    prune_writes,
    read_floor,
    undo_writes,
)
from ledger.state_root import (
    EMPTY_ROOT,
    SmtUpdate,
    SparseMerkleTree,
    StateProof,
    compute_root,
    stores_interior,
)

SCHEMA_VERSION = 5
"""2: blocks are stored with their consensus metadata and rejected requests.
3: no tree record for an interior node at an odd depth.
4: tree records for interior nodes only at every fourth depth
(``ledger.state_root.INTERIOR_RECORD_DEPTHS``). A version-2 or version-3
store is migrated when it opens (``_migrate_tree_records``).
5: one changed-keys (``"V"``) record a height instead of one per changed key
(``ledger.state_history``). A version-4 store's per-key records are pruned as
they were, so opening it only writes the new version: older code would never
prune the new records, and now refuses the store instead."""
MIGRATED_SCHEMA_VERSIONS = (2, 3)
"""Versions that differ from this one in which interior tree records exist."""
READ_AS_IS_SCHEMA_VERSIONS = (4,)
"""Versions this code reads unchanged, and relabels when it opens them."""
SCHEMA_NAME = "veil/ledger-store"
HASH_BYTES = 32
MAX_OWNER_BYTES = 255

SCHEMA_KEY = b"\x00schema"
TIP_KEY = b"\x00tip"
BLOCK_PREFIX = b"B"
CERTIFICATE_PREFIX = b"C"
METADATA_PREFIX = b"M"
REJECTED_PREFIX = b"R"
BLOCK_HASH_PREFIX = b"K"
HEIGHT_BY_HASH_PREFIX = b"H"
TX_PREFIX = b"T"
OWNER_PREFIX = b"O"
STATE_PREFIX = b"S"
NODE_PREFIX = b"N"

_U64 = struct.Struct(">Q")
MAX_REJECTED_LIST_BYTES: Final = 64 << 20
"""Decode bound of a stored rejected list: far above any batch consensus accepts."""


class StoreError(Exception):
    """Base class of storage errors."""


class SchemaVersionError(StoreError):
    """The database was written by another schema version (or is not a Veil store)."""


class StoreCorruptError(StoreError):
    """Stored data is damaged (a checksum fails) or contradicts itself (tip, tree,
    blocks and indexes disagree)."""


class StoreIOError(StoreError):
    """The backend could not read or write (a failed or short read, a full disk...)."""


class StoreLatchedError(StoreIOError):
    """An earlier block write failed, so the store refuses writes until it is reopened.
    An I/O error still: the caller that meets it second must stop as the first did."""


class StoreInvariantError(StoreError):
    """A caller broke a storage invariant: wrong height, duplicate tx id, bad index change."""


class BlockClaim(NamedTuple):
    """What a stored block's own bytes say about it (see ``BlockClaims``)."""

    block_hash: bytes
    state_root: bytes
    """The state root after the block, as its header (or genesis) fixes it."""
    prev_hash: bytes | None
    """The parent's hash; ``None`` for height 0."""


BlockClaims = Callable[[int, bytes, bytes], BlockClaim]
"""``(height, block bytes, chain id) -> BlockClaim``: how the chain's block format
hashes a stored block (``ledger.stored_block.stored_block_claim``). The store
treats block bytes as opaque, so this is passed in; raises ``ValueError`` for
bytes that are no block of that height. The chain id is the hash stored at height 0.
"""


class TxLocation(NamedTuple):
    """Where a committed tx is: block height and its index in the block."""

    height: int
    index_in_block: int


class OwnerIndexChange(NamedTuple):
    """Add (``added=True``) or remove an output id from an owner's index."""

    owner: bytes
    output_id: bytes
    added: bool


@dataclass(frozen=True, slots=True)
class BlockWrite:
    """Everything one block commits, written by ``Store.commit_block`` in one synced batch.

    ``certificate_bytes`` is the consensus commit certificate, opaque here (the
    ledger does not import consensus). ``rejected`` lists the batch's requests
    that are not in the block, in batch order.
    """

    height: int
    block_hash: bytes
    block_bytes: bytes
    certificate_bytes: bytes
    metadata: BlockMetadata
    rejected: tuple[RejectedRequest, ...]
    delta: Mapping[bytes, bytes | None]
    tx_ids: tuple[bytes, ...]
    owner_index_changes: tuple[tuple[bytes, bytes, bool], ...] = ()
    prior_state: Mapping[bytes, bytes | None] = field(default_factory=dict, repr=False)
    """Values some state keys had at ``height - 1``, as the executor read them from
    this store: the undo log takes a changed key's old value from here rather
    than reading it again (``commit_block`` refuses any other height)."""


@runtime_checkable
class StoreReader(Protocol):
    """The reads of a ``Store``: what the rules, the mempool and the API need.

    A ``StoreSnapshot`` is one, frozen at a block: every read answers for that
    block, whatever is committed meanwhile (see ``KeyValueStore.snapshot``).
    """

    def get_state(self, key: bytes) -> bytes | None: ...
    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...
    def iter_namespace(self, namespace: bytes) -> Iterator[tuple[bytes, bytes]]: ...
    def state_root(self) -> bytes: ...
    def height(self) -> int: ...
    def tip_hash(self) -> bytes | None: ...
    def block_at(self, height: int) -> bytes | None: ...
    def certificate_at(self, height: int) -> bytes | None: ...
    def metadata_at(self, height: int) -> BlockMetadata | None: ...
    def rejected_at(self, height: int) -> tuple[RejectedRequest, ...] | None: ...
    def block_hash_at(self, height: int) -> bytes | None: ...
    def block_by_hash(self, block_hash: bytes) -> bytes | None: ...
    def height_of_block(self, block_hash: bytes) -> int | None: ...
    def tx_location(self, tx_id: bytes) -> TxLocation | None: ...
    def outputs_by_owner(self, owner: bytes) -> list[bytes]: ...
    def outputs_by_owner_page(
        self, owner: bytes, after: bytes | None, limit: int
    ) -> list[bytes]: ...
    def history_floor(self) -> int: ...
    def state_at(self, height: int) -> StateReader | None: ...


@runtime_checkable
class Store(StoreReader, Protocol):
    """Blocks, certificates, state and indexes of one node. See module docstring."""

    def preview_state_root(self, delta: Mapping[bytes, bytes | None]) -> bytes: ...
    def prove_state(self, key: bytes) -> StateProof: ...
    def verify_state_root(self) -> bytes: ...
    def view(self) -> StateView: ...
    def snapshot(self) -> StoreSnapshot: ...
    def commit_block(self, write: BlockWrite, *, sync: bool = True) -> bytes: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class BackendReader(Protocol):
    """The reads of an ordered byte key-value map."""

    def get(self, key: bytes) -> bytes | None: ...
    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """The pairs whose key starts with ``prefix``, in ascending key order, from the
        first key at or after ``start`` (a seek: the keys before it are not read)."""
        ...


class Backend(BackendReader, Protocol):
    """An ordered byte key-value map with atomic batched writes and snapshots."""

    def write(self, batch: Sequence[tuple[bytes, bytes | None]], *, sync: bool = True) -> None:
        """Apply all puts (value bytes) and deletes (``None``) at once, durably unless
        ``sync`` is False. Writes reach the disk in order: a synced write makes every
        earlier one durable too, and each batch is all or nothing."""
        ...

    def snapshot(self) -> BackendReader:
        """The map as it is now; later writes never show through it."""
        ...

    def close(self) -> None: ...


def _u64(value: int) -> bytes:
    return _U64.pack(value)


def _check_write_types(write: BlockWrite) -> None:
    """Refuse a ``BlockWrite`` whose fields are not what the layout stores."""
    if isinstance(write.height, bool) or not isinstance(write.height, int):
        raise StoreInvariantError("height must be an int")
    _check_hash("block hash", write.block_hash)
    if not isinstance(write.block_bytes, bytes) or not isinstance(write.certificate_bytes, bytes):
        raise StoreInvariantError("block and certificate must be bytes")
    if not isinstance(write.metadata, BlockMetadata):
        raise StoreInvariantError("metadata must be a BlockMetadata")
    if not isinstance(write.rejected, tuple) or not all(
        isinstance(r, RejectedRequest) for r in write.rejected
    ):
        raise StoreInvariantError("rejected must be a tuple of RejectedRequest")
    indices = [r.index_in_batch for r in write.rejected]
    if indices != sorted(set(indices)):
        raise StoreInvariantError("rejected requests must be in batch order, each once")
    if not isinstance(write.prior_state, Mapping):
        raise StoreInvariantError("prior state must be a mapping")


def owner_index_key(owner: bytes, output_id: bytes) -> bytes:
    return OWNER_PREFIX + bytes([len(owner)]) + owner + output_id


def prefix_end(prefix: bytes) -> bytes | None:
    """The least key above every key that starts with ``prefix`` (``None``: none is)."""
    stem = prefix.rstrip(b"\xff")
    return stem[:-1] + bytes([stem[-1] + 1]) if stem else None


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise StoreInvariantError(f"{name} must be {HASH_BYTES} bytes")


class CommittedReads:
    """The reads shared by ``KeyValueStore`` and ``StoreSnapshot``: the key layout and
    the height bounds, over a ``BackendReader`` and a tip (height, hash, state root)."""

    _reads: BackendReader
    _height: int
    _tip_hash: bytes | None
    _root: bytes
    _history_floor: int

    # --- state --------------------------------------------------------------

    def get_state(self, key: bytes) -> bytes | None:
        return self._reads.get(STATE_PREFIX + key)

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(state key, value) pairs starting with ``prefix``, in ascending key order."""
        skip = len(STATE_PREFIX)
        for key, value in self._reads.iterate(STATE_PREFIX + prefix):
            yield key[skip:], value

    def iter_namespace(self, namespace: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key within ``namespace``, value) pairs, in ascending key order."""
        prefix = namespace_prefix(namespace)
        for key, value in self.iter_state(prefix):
            yield key[len(prefix) :], value

    def state_root(self) -> bytes:
        return self._root

    def history_floor(self) -> int:
        """The lowest height ``state_at`` answers (the tip's if nothing is committed)."""
        return self._history_floor

    def state_at(self, height: int) -> StateReader | None:
        """The state after the block at ``height``; ``None`` outside
        ``[history_floor(), height()]``. The tip's state is this reader itself."""
        if self._height < 0 or not self._history_floor <= height <= self._height:
            return None
        if height == self._height:
            return self
        return StateAt(self._reads, STATE_PREFIX, height)

    # --- blocks and indexes -------------------------------------------------

    def height(self) -> int:
        return self._height

    def tip_hash(self) -> bytes | None:
        return self._tip_hash

    def block_at(self, height: int) -> bytes | None:
        if not 0 <= height <= self._height:
            return None
        return self._reads.get(BLOCK_PREFIX + _u64(height))

    def certificate_at(self, height: int) -> bytes | None:
        if not 0 <= height <= self._height:
            return None
        return self._reads.get(CERTIFICATE_PREFIX + _u64(height))

    def metadata_at(self, height: int) -> BlockMetadata | None:
        """The consensus metadata the block at ``height`` was built from."""
        if not 0 <= height <= self._height:
            return None
        raw = self._reads.get(METADATA_PREFIX + _u64(height))
        if raw is None:
            raise StoreCorruptError(f"block {height} has no metadata record")
        try:
            return BlockMetadata.decode(raw)
        except DecodeError as exc:
            raise StoreCorruptError(f"unreadable metadata of block {height}: {exc}") from exc

    def rejected_at(self, height: int) -> tuple[RejectedRequest, ...] | None:
        """The requests of the batch at ``height`` left out of its block, in batch order."""
        if not 0 <= height <= self._height:
            return None
        raw = self._reads.get(REJECTED_PREFIX + _u64(height))
        if raw is None:
            raise StoreCorruptError(f"block {height} has no rejected-requests record")
        try:
            return decode_rejected_list(raw, max_bytes=MAX_REJECTED_LIST_BYTES)
        except DecodeError as exc:
            raise StoreCorruptError(f"unreadable rejected list of block {height}: {exc}") from exc

    def block_hash_at(self, height: int) -> bytes | None:
        if not 0 <= height <= self._height:
            return None
        return self._reads.get(BLOCK_HASH_PREFIX + _u64(height))

    def height_of_block(self, block_hash: bytes) -> int | None:
        raw = self._reads.get(HEIGHT_BY_HASH_PREFIX + block_hash)
        return None if raw is None else int(_U64.unpack(raw)[0])

    def block_by_hash(self, block_hash: bytes) -> bytes | None:
        height = self.height_of_block(block_hash)
        return None if height is None else self.block_at(height)

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        raw = self._reads.get(TX_PREFIX + tx_id)
        if raw is None:
            return None
        location = decode_value(raw)
        if not isinstance(location, tuple) or len(location) != 2:
            raise StoreCorruptError(f"malformed location record of tx {tx_id.hex()}")
        height, index = location
        if not isinstance(height, int) or not isinstance(index, int):
            raise StoreCorruptError(f"malformed location record of tx {tx_id.hex()}")
        return TxLocation(height, index)

    def outputs_by_owner(self, owner: bytes) -> list[bytes]:
        """Output ids indexed under ``owner``, in ascending byte order."""
        prefix = OWNER_PREFIX + bytes([len(owner)]) + owner
        return [key[len(prefix) :] for key, _ in self._reads.iterate(prefix)]

    def outputs_by_owner_page(self, owner: bytes, after: bytes | None, limit: int) -> list[bytes]:
        """The first ``limit`` output ids indexed under ``owner`` that sort after
        ``after`` (from the first if ``None``), in ascending byte order.

        A seek into the index: it reads at most ``limit`` entries however many the
        owner has, so paging through them is linear, not quadratic. The keys of
        one owner differ only in the id, so key order is id order; ``after`` need
        not be indexed (it may have been spent since).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be an int >= 0, got {limit!r}")
        prefix = OWNER_PREFIX + bytes([len(owner)]) + owner
        # prefix + after + 0x00 is the least key above prefix + after.
        start = prefix if after is None else prefix + after + b"\x00"
        entries = islice(self._reads.iterate(prefix, start), limit)
        return [key[len(prefix) :] for key, _ in entries]


class StoreSnapshot(CommittedReads):
    """A ``StoreReader`` frozen at one committed block (``KeyValueStore.snapshot``).

    Its tip and its backend snapshot were taken together, between two commits,
    so every read answers for the same block: a reader never sees a block's
    state or indexes without its tip, or the reverse. Safe to read from any
    thread while the store goes on committing.

    State reads and tx locations are memoized (up to ``MEMO_KEYS`` keys each):
    the snapshot never changes, and a node's mempool reads the same few keys (a
    bank's member record and nonce) for every pending tx it re-admits after a
    block, and looks each pending tx up in the tx index twice, each a
    checksummed LevelDB read otherwise.
    """

    MEMO_KEYS = 65_536

    def __init__(
        self,
        reads: BackendReader,
        height: int,
        tip_hash: bytes | None,
        root: bytes,
        history_floor: int,
    ) -> None:
        self._reads = reads
        self._height = height
        self._tip_hash = tip_hash
        self._root = root
        self._history_floor = history_floor
        self._state_memo: dict[bytes, bytes | None] = {}
        self._location_memo: dict[bytes, TxLocation | None] = {}

    def get_state(self, key: bytes) -> bytes | None:
        memo = self._state_memo
        if key in memo:
            return memo[key]
        value = super().get_state(key)
        if len(memo) < self.MEMO_KEYS:
            memo[key] = value
        return value

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        memo = self._location_memo
        if tx_id in memo:
            return memo[tx_id]
        location = super().tx_location(tx_id)
        if len(memo) < self.MEMO_KEYS:
            memo[tx_id] = location
        return location


class KeyValueStore(CommittedReads):
    """The ``Store`` logic over any ``Backend``."""

    def __init__(
        self,
        backend: Backend,
        *,
        cache_nodes: int | None = None,
        block_claims: BlockClaims | None = None,
        history_heights: int = DEFAULT_STATE_HISTORY_HEIGHTS,
    ) -> None:
        if history_heights < 0:
            raise ValueError("history_heights must be >= 0")
        self._backend = backend
        self._reads: BackendReader = backend
        self._history_heights = history_heights
        self._check_schema()
        self._tree = SparseMerkleTree(self._read_node, cache_nodes=cache_nodes)
        self._height = -1
        self._tip_hash: bytes | None = None
        self._root = EMPTY_ROOT
        self._preview: tuple[tuple[tuple[bytes, bytes | None], ...], SmtUpdate] | None = None
        self._write_failure: str | None = None
        self._load_tip()
        # A store written before the undo log existed answers only from its tip on.
        stored_floor = read_floor(backend)
        self._history_floor = max(self._height, 0) if stored_floor is None else stored_floor
        if block_claims is not None:
            self.check_tip_block(block_claims)

    # --- opening ------------------------------------------------------------

    def _check_schema(self) -> None:
        expected = encode_value((SCHEMA_NAME, SCHEMA_VERSION))
        found = self._backend.get(SCHEMA_KEY)
        if found is None:
            if next(self._backend.iterate(b""), None) is not None:
                raise SchemaVersionError("database has data but no schema key: not a Veil store")
            self._backend.write([(SCHEMA_KEY, expected)])
            return
        if any(found == encode_value((SCHEMA_NAME, old)) for old in MIGRATED_SCHEMA_VERSIONS):
            self._migrate_tree_records(expected)
            return
        if any(found == encode_value((SCHEMA_NAME, old)) for old in READ_AS_IS_SCHEMA_VERSIONS):
            self._backend.write([(SCHEMA_KEY, expected)])
            return
        if found != expected:
            try:
                described = repr(decode_value(found))
            except DecodeError:
                described = found.hex()
            raise SchemaVersionError(
                f"database schema is {described}, this code reads "
                f"({SCHEMA_NAME!r}, {SCHEMA_VERSION}); migrate or use a fresh data directory"
            )

    def _migrate_tree_records(self, schema: bytes) -> None:
        """Delete the interior tree records an older version kept at depths this
        one does not store, and record the new version, in one synced batch: a
        crash leaves either layout whole."""
        stale: list[tuple[bytes, bytes | None]] = [
            (key, None)
            for key, record in self._backend.iterate(NODE_PREFIX)
            if record[:1] == b"\x01"
            and not stores_interior(int.from_bytes(key[len(NODE_PREFIX) :], "big"))
        ]
        self._backend.write([*stale, (SCHEMA_KEY, schema)])

    def _load_tip(self) -> None:
        raw = self._backend.get(TIP_KEY)
        tree_root = self._tree.root()
        if raw is None:
            if tree_root != EMPTY_ROOT:
                raise StoreCorruptError("no tip recorded but the state tree is not empty")
            return
        try:
            tip = decode_value(raw)
        except DecodeError as exc:
            raise StoreCorruptError(f"unreadable tip record: {exc}") from exc
        if not isinstance(tip, tuple) or len(tip) != 3:
            raise StoreCorruptError("malformed tip record")
        height, block_hash, root = tip
        if not isinstance(height, int) or not isinstance(block_hash, bytes):
            raise StoreCorruptError("malformed tip record")
        if not isinstance(root, bytes) or root != tree_root:
            raise StoreCorruptError("tip state root does not match the stored state tree")
        if self._backend.get(BLOCK_HASH_PREFIX + _u64(height)) != block_hash:
            raise StoreCorruptError(f"tip block {height} is missing or has another hash")
        if self._backend.get(HEIGHT_BY_HASH_PREFIX + block_hash) != _u64(height):
            raise StoreCorruptError(f"the height index does not point at tip block {height}")
        for table, what in ((BLOCK_PREFIX, "block"), (CERTIFICATE_PREFIX, "certificate")):
            if self._backend.get(table + _u64(height)) is None:
                raise StoreCorruptError(f"the tip {what} at height {height} is missing")
        self._height, self._tip_hash, self._root = height, block_hash, root

    def check_tip_block(self, block_claims: BlockClaims) -> None:
        """The tip block's own bytes agree with the tip record: they hash to the tip
        hash, name the stored parent hash, and fix the stored state root.

        Cheap (one block decoded and hashed) and run at open when ``block_claims``
        is given, so a damaged or substituted tip block is refused before any new
        block is built on it. Raises ``StoreCorruptError``.
        """
        if self._height < 0 or self._tip_hash is None:
            return
        chain_id = self._backend.get(BLOCK_HASH_PREFIX + _u64(0))
        block_bytes = self._backend.get(BLOCK_PREFIX + _u64(self._height))
        if chain_id is None or block_bytes is None:
            raise StoreCorruptError("the genesis hash or the tip block is missing")
        try:
            claim = block_claims(self._height, block_bytes, chain_id)
        except ValueError as exc:
            raise StoreCorruptError(f"tip block {self._height} does not decode: {exc}") from exc
        if claim.block_hash != self._tip_hash:
            raise StoreCorruptError(f"tip block {self._height} does not hash to the tip hash")
        if claim.state_root != self._root:
            raise StoreCorruptError(
                f"tip block {self._height} fixes another state root than the stored one"
            )
        if self._height > 0:
            parent = self._backend.get(BLOCK_HASH_PREFIX + _u64(self._height - 1))
            if parent is None or claim.prev_hash != parent:
                raise StoreCorruptError(
                    f"tip block {self._height} does not name the stored block "
                    f"{self._height - 1} as its parent"
                )

    def _read_node(self, position: bytes) -> bytes | None:
        return self._backend.get(NODE_PREFIX + position)

    # --- state (the store's own) ---------------------------------------------

    def view(self) -> StateView:
        """A pending view to apply a block through; ``view.delta()`` feeds ``commit_block``."""
        return StateView(self)

    def _update_for(self, delta: Mapping[bytes, bytes | None]) -> SmtUpdate:
        items = tuple(delta.items())
        cached = self._preview
        if (
            cached is not None
            and cached[1].base_version == self._tree.version
            and cached[0] == items
        ):
            return cached[1]
        for key, value in items:
            check_state_key(key)
            if value is not None and not isinstance(value, bytes):
                raise StoreInvariantError(f"state value must be bytes, got {type(value).__name__}")
        update = self._tree.compute_update(delta)
        self._preview = (items, update)
        return update

    def preview_state_root(self, delta: Mapping[bytes, bytes | None]) -> bytes:
        """The state root after ``delta``, without committing (reused by ``commit_block``)."""
        return self._update_for(delta).root

    def prove_state(self, key: bytes) -> StateProof:
        """Proof of ``key``'s value (or absence) under ``state_root()``."""
        return self._tree.prove(key)

    def verify_state_root(self) -> bytes:
        """Recompute the root from the stored state alone; raise if it differs from the tree's.

        O(state size): an operator's integrity check, not something to run per block.
        """
        recomputed = compute_root(dict(self.iter_state()))
        if recomputed != self._root:
            raise StoreCorruptError(
                f"stored state hashes to {recomputed.hex()}, the tree says {self._root.hex()}"
            )
        return recomputed

    def snapshot(self) -> StoreSnapshot:
        """The committed store as it is now, for readers on other threads.

        Call it where no ``commit_block`` runs at the same time (on the one
        thread that commits, or before it starts): the tip comes from memory and
        the backend snapshot from the backend, and only then do they agree.
        """
        return StoreSnapshot(
            self._backend.snapshot(), self._height, self._tip_hash, self._root, self._history_floor
        )

    # --- commits --------------------------------------------------------------

    def commit_block(self, write: BlockWrite, *, sync: bool = True) -> bytes:
        """Write a block, its certificate, metadata, rejected requests, state changes,
        tree nodes and indexes atomically.

        ``sync=False`` skips the fsync, for catch-up's blocks that are certified
        already and can be fetched again: a crash may lose the latest of them (never
        part of one), and ``sync`` makes them durable before anyone is told.

        Returns the new state root. Raises ``StoreInvariantError`` (and writes
        nothing) if the height is not ``height() + 1``, the hash is already
        stored, a tx id repeats, or an index change does not match the index.
        """
        self._refuse_if_latched()
        _check_write_types(write)
        height, block_hash = write.height, write.block_hash
        if height != self._height + 1:
            raise StoreInvariantError(
                f"block height {height} does not follow the stored height {self._height}"
            )
        if self._backend.get(HEIGHT_BY_HASH_PREFIX + block_hash) is not None:
            raise StoreInvariantError(f"block hash {block_hash.hex()} is already stored")
        batch: list[tuple[bytes, bytes | None]] = []
        seen_tx: set[bytes] = set()
        for index, tx_id in enumerate(write.tx_ids):
            _check_hash("tx id", tx_id)
            if tx_id in seen_tx or self._backend.get(TX_PREFIX + tx_id) is not None:
                raise StoreInvariantError(f"tx id {tx_id.hex()} is already stored")
            seen_tx.add(tx_id)
            batch.append((TX_PREFIX + tx_id, encode_value((height, index))))
        delta = write.delta
        batch.extend(self._owner_index_writes(write.owner_index_changes))
        update = self._update_for(delta)
        floor = next_floor(self._history_floor, height, self._history_heights)
        if height > floor:  # the state at floor..height-1 needs this block's undo entries
            batch.extend(undo_writes(self._prior_reader(write.prior_state), height, delta))
        try:
            batch.extend(prune_writes(self._backend, self._history_floor, floor))
        except HistoryCorruptError as exc:
            raise StoreCorruptError(f"pruning the history up to height {floor}: {exc}") from exc
        batch.append(floor_write(floor))
        batch.extend([(STATE_PREFIX + key, value) for key, value in delta.items()])
        batch.extend(update.records(NODE_PREFIX))
        h = _u64(height)
        batch.append((BLOCK_PREFIX + h, write.block_bytes))
        batch.append((CERTIFICATE_PREFIX + h, write.certificate_bytes))
        batch.append((METADATA_PREFIX + h, write.metadata.encode()))
        batch.append((REJECTED_PREFIX + h, RejectedList(write.rejected).encode()))
        batch.append((BLOCK_HASH_PREFIX + h, block_hash))
        batch.append((HEIGHT_BY_HASH_PREFIX + block_hash, h))
        batch.append((TIP_KEY, encode_value((height, block_hash, update.root))))
        try:
            if sync:
                self._backend.write(batch)
            else:
                self._backend.write(batch, sync=False)
        except BaseException as exc:
            # Whether the batch reached the disk is unknown: refuse to go on from memory.
            self._write_failure = repr(exc)
            self._tree.clear_cache()
            self._preview = None
            raise
        self._tree.apply_update(update)
        self._preview = None
        self._height, self._tip_hash, self._root = height, block_hash, update.root
        self._history_floor = floor
        return update.root

    def _prior_reader(self, prior: Mapping[bytes, bytes | None]) -> Callable[[bytes], bytes | None]:
        """A key's committed value: from ``prior`` (read at this very height, as
        ``commit_block``'s height check ensures) if there, else from the backend."""
        if not prior:
            return self.get_state
        get_state = self.get_state

        def current(key: bytes) -> bytes | None:
            return prior[key] if key in prior else get_state(key)

        return current

    def _refuse_if_latched(self) -> None:
        if self._write_failure is not None:
            raise StoreLatchedError(
                f"an earlier block write failed ({self._write_failure}); reopen the store"
            )

    def sync(self) -> None:
        """Make every block committed with ``sync=False`` durable (one synced empty
        write: the backend's writes reach the disk in order)."""
        self._refuse_if_latched()
        try:
            self._backend.write([])
        except BaseException as exc:
            self._write_failure = repr(exc)
            raise

    def _owner_index_writes(
        self, changes: Iterable[tuple[bytes, bytes, bool]]
    ) -> list[tuple[bytes, bytes | None]]:
        present: dict[bytes, bool] = {}
        for owner, output_id, added in changes:
            if not isinstance(owner, bytes) or not 0 < len(owner) <= MAX_OWNER_BYTES:
                raise StoreInvariantError(f"owner must be 1-{MAX_OWNER_BYTES} bytes")
            if not isinstance(output_id, bytes) or not output_id:
                raise StoreInvariantError("output id must be non-empty bytes")
            key = owner_index_key(owner, output_id)
            if key not in present:
                present[key] = self._backend.get(key) is not None
            if present[key] == bool(added):
                state = "already indexed" if added else "not indexed"
                raise StoreInvariantError(
                    f"output {output_id.hex()} of owner {owner.hex()[:16]} is {state}"
                )
            present[key] = bool(added)
        return [(key, b"" if now else None) for key, now in present.items()]

    def close(self) -> None:
        self._backend.close()


_ORDERED_TABLES = frozenset(
    (STATE_PREFIX[0], OWNER_PREFIX[0], SCHEMA_KEY[0], UNDO_PREFIX[0], CHANGED_PREFIX[0])
)
"""Tables a memory map keeps a sorted key list for, because they are iterated by prefix."""


class MemoryMap:
    """A dict, with a sorted key list for the tables that are iterated (state, owners).

    Read-only once a snapshot shares it: ``MemoryBackend`` copies it before its
    next write instead (copy on write), so a snapshot never changes.
    """

    def __init__(self, data: dict[bytes, bytes], ordered: list[bytes]) -> None:
        self.data = data
        self.ordered = ordered

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        if not prefix or prefix[0] not in _ORDERED_TABLES:
            yield from sorted(
                (k, v) for k, v in self.data.items() if k.startswith(prefix) and k >= start
            )
            return
        ordered = self.ordered
        end = prefix_end(prefix)
        low = bisect_left(ordered, max(prefix, start))
        high = len(ordered) if end is None else bisect_left(ordered, end)
        # The keys are listed before the first yield, as before, so a write made
        # meanwhile adds or drops none; one C-level slice, no loop over the keys.
        for key in ordered[low:high]:
            yield key, self.data[key]


class MemoryBackend:
    """A ``MemoryMap`` that snapshots by sharing it and copies it on the next write."""

    def __init__(self) -> None:
        self._map = MemoryMap({}, [])
        self._shared = False

    def get(self, key: bytes) -> bytes | None:
        return self._map.get(key)

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self._map.iterate(prefix, start)

    def snapshot(self) -> MemoryMap:
        self._shared = True
        return self._map

    def write(self, batch: Sequence[tuple[bytes, bytes | None]], *, sync: bool = True) -> None:
        if self._shared:
            # A snapshot reads the current map: build the next one beside it.
            self._map = MemoryMap(dict(self._map.data), list(self._map.ordered))
            self._shared = False
        data, ordered = self._map.data, self._map.ordered
        for key, value in batch:
            if value is None:
                if data.pop(key, None) is not None and key[0] in _ORDERED_TABLES:
                    del ordered[bisect_left(ordered, key)]
            else:
                if key not in data and key[0] in _ORDERED_TABLES:
                    insort(ordered, key)
                data[key] = value

    def close(self) -> None:
        """Nothing to release."""


class MemoryStore(KeyValueStore):
    """A ``Store`` in memory: for tests, the simulator and replay checks."""

    def __init__(
        self,
        *,
        cache_nodes: int | None = None,
        history_heights: int = DEFAULT_STATE_HISTORY_HEIGHTS,
    ) -> None:
        self.backend = MemoryBackend()
        super().__init__(self.backend, cache_nodes=cache_nodes, history_heights=history_heights)
