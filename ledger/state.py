"""The state model: one namespaced key -> value map, changed by a ``StateDelta`` per block.

Why a flat map: the state root (``ledger.state_root``) authenticates a set of
(key, value) byte strings, and the ``Store`` persists the same pairs, so
everything the rules keep (unspent outputs, accounts, loans, chain metadata)
lives under one addressing scheme and one root.

A *state key* is ``namespace + b":" + key``. A namespace is 1 to 16 lowercase
ASCII letters, so it never contains ``b":"`` and the split is unambiguous; the
key part is any byte string (an output id, a public key...). Values are
canonical encodings chosen by the rules; the storage layer treats them as
opaque bytes.

``StateView`` is the pending view the rules apply a block through: reads see
the base state plus every earlier write of the same block, and ``delta()``
gives the changes to commit. A view over another view lets a transaction's
writes be dropped when the transaction turns out to be invalid.
"""

from __future__ import annotations

import re
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping
from typing import Protocol

# The namespaces the ledger uses: defined here once; ``ledger.rules`` documents
# the record kept under each and owns every read and write of them.
NS_OUTPUT = b"out"
"""Outputs by output id (unspent, or the record of their spending)."""
NS_ACCOUNT = b"acct"
"""Registered accounts (banks too) by public key."""
NS_MEMBER = b"member"
"""Member banks by public key."""
NS_ASSET = b"asset"
"""Assets by asset id."""
NS_NONCE = b"nonce"
"""The last nonce used, by signer key."""
NS_ATTEST = b"attest"
"""Attestations by tx id."""
NS_LOAN = b"loan"
"""Loans (``ledger.loans.LoanRecord``) by loan id (the originating tx id)."""
NS_BORROWER = b"borrower"
"""The borrower → loans index: key ``borrower || loan id``, value the origination height."""
NS_META = b"meta"
"""Chain-wide settings (the auditor key, the clock) by name."""

NAMESPACE_SEPARATOR = b":"
MAX_STATE_KEY_BYTES = 256
MAX_STATE_VALUE_BYTES = 1 << 20

_NAMESPACE = re.compile(rb"[a-z]{1,16}")
_CHECKED_NAMESPACES: set[bytes] = set()
"""Namespaces that passed: every state key's check starts here, and they are code
constants, so a handful (bounded all the same by ``_MAX_CHECKED_NAMESPACES``)."""
_MAX_CHECKED_NAMESPACES = 64


class StateKeyError(ValueError):
    """A namespace or state key is malformed."""


def check_namespace(namespace: bytes) -> None:
    """Raise ``StateKeyError`` unless ``namespace`` is 1-16 lowercase ASCII letters."""
    if type(namespace) is bytes and namespace in _CHECKED_NAMESPACES:
        return
    # fullmatch: with match and "$", a trailing newline passed.
    if not isinstance(namespace, bytes) or not _NAMESPACE.fullmatch(namespace):
        raise StateKeyError(f"namespace {namespace!r} must be 1-16 lowercase ASCII letters")
    if type(namespace) is bytes and len(_CHECKED_NAMESPACES) < _MAX_CHECKED_NAMESPACES:
        _CHECKED_NAMESPACES.add(namespace)


def state_key(namespace: bytes, key: bytes) -> bytes:
    """The state key of ``key`` in ``namespace``: ``namespace + b":" + key``."""
    check_namespace(namespace)
    if not isinstance(key, bytes):
        raise StateKeyError(f"key must be bytes, got {type(key).__name__}")
    full = namespace + NAMESPACE_SEPARATOR + key
    if len(full) > MAX_STATE_KEY_BYTES:
        raise StateKeyError(f"state key of {len(full)} bytes exceeds {MAX_STATE_KEY_BYTES}")
    return full


def namespace_prefix(namespace: bytes) -> bytes:
    """The prefix every state key in ``namespace`` starts with."""
    check_namespace(namespace)
    return namespace + NAMESPACE_SEPARATOR


def split_state_key(full_key: bytes) -> tuple[bytes, bytes]:
    """``(namespace, key)`` of a state key; raises ``StateKeyError`` if malformed."""
    namespace, sep, key = full_key.partition(NAMESPACE_SEPARATOR)
    if not sep:
        raise StateKeyError(f"state key {full_key[:40]!r} has no namespace separator")
    check_namespace(namespace)
    return namespace, key


def check_state_key(full_key: bytes) -> None:
    """Raise ``StateKeyError`` unless ``full_key`` is a well-formed state key."""
    if not isinstance(full_key, bytes):
        raise StateKeyError(f"state key must be bytes, got {type(full_key).__name__}")
    if len(full_key) > MAX_STATE_KEY_BYTES:
        raise StateKeyError(f"state key of {len(full_key)} bytes exceeds {MAX_STATE_KEY_BYTES}")
    split_state_key(full_key)


def output_key(output_id: bytes) -> bytes:
    return state_key(NS_OUTPUT, output_id)


def account_key(public_key: bytes) -> bytes:
    return state_key(NS_ACCOUNT, public_key)


class StateDelta(Mapping[bytes, bytes | None]):
    """Ordered changes to the state: key -> new value, or ``None`` to delete the key.

    Order is the order of first write; it does not affect the state root.
    Keys and values are checked when they are set, once: merging or copying
    another ``StateDelta`` takes its changes as they are (they passed the same
    checks), which keeps a block's and the mempool's merges to dict updates.
    """

    __slots__ = ("_changes",)

    def __init__(self, changes: Iterable[tuple[bytes, bytes | None]] = ()) -> None:
        self._changes: dict[bytes, bytes | None] = {}
        for key, value in changes:
            self._set(key, value)

    def _set(self, key: bytes, value: bytes | None) -> None:
        check_state_key(key)
        if value is not None:
            if not isinstance(value, bytes):
                raise TypeError(f"state value must be bytes, got {type(value).__name__}")
            if len(value) > MAX_STATE_VALUE_BYTES:
                raise ValueError(f"state value of {len(value)} bytes is too large")
        self._changes[key] = value

    def put(self, key: bytes, value: bytes) -> None:
        if value is None:
            raise TypeError("put() needs bytes; use delete() to remove a key")
        self._set(key, value)

    def delete(self, key: bytes) -> None:
        self._set(key, None)

    def update(self, other: Mapping[bytes, bytes | None]) -> None:
        """Apply ``other``'s changes on top of these (later writes win)."""
        if type(other) is StateDelta:
            self._changes.update(other._changes)  # checked when they were set there
            return
        for key, value in other.items():
            self._set(key, value)

    def copy(self) -> StateDelta:
        """The same changes in a new delta (no check repeated)."""
        copied = StateDelta()
        copied._changes = dict(self._changes)
        return copied

    def __getitem__(self, key: bytes) -> bytes | None:
        return self._changes[key]

    def __contains__(self, key: object) -> bool:
        return key in self._changes

    def items(self) -> ItemsView[bytes, bytes | None]:
        return self._changes.items()

    def keys(self) -> KeysView[bytes]:
        return self._changes.keys()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._changes)

    def __len__(self) -> int:
        return len(self._changes)

    def __repr__(self) -> str:
        return f"StateDelta({len(self._changes)} changes)"


class StateReader(Protocol):
    """Read access to a state: a ``Store``, or a ``StateView`` over one."""

    def get_state(self, key: bytes) -> bytes | None: ...

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with ``prefix``, in ascending key order."""
        ...


class StateView:
    """A pending state: ``base`` plus the writes made through this view.

    Nothing reaches ``base``; ``delta()`` returns the writes for
    ``Store.commit_block`` (or for ``merge`` into an outer view).
    """

    __slots__ = ("_base", "_pending")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._pending = StateDelta()

    @property
    def base(self) -> StateReader:
        return self._base

    def get_state(self, key: bytes) -> bytes | None:
        # The delta's dict itself: every read of every rule and rebuild comes here, and
        # StateDelta's ``in`` and ``[]`` are two Python calls a read.
        written = self._pending._changes
        if key in written:
            return written[key]
        return self._base.get_state(key)

    def get(self, namespace: bytes, key: bytes) -> bytes | None:
        return self.get_state(state_key(namespace, key))

    def contains(self, key: bytes) -> bool:
        return self.get_state(key) is not None

    def put(self, key: bytes, value: bytes) -> None:
        self._pending.put(key, value)

    def delete(self, key: bytes) -> None:
        self._pending.delete(key)

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Base pairs overlaid with pending writes, in ascending key order."""
        pending = sorted((k, v) for k, v in self._pending.items() if k.startswith(prefix))
        base = self._base.iter_state(prefix)
        base_item = next(base, None)
        for key, value in pending:
            while base_item is not None and base_item[0] < key:
                yield base_item
                base_item = next(base, None)
            if base_item is not None and base_item[0] == key:
                base_item = next(base, None)
            if value is not None:
                yield key, value
        while base_item is not None:
            yield base_item
            base_item = next(base, None)

    def iter_namespace(self, namespace: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key within the namespace, value) pairs, in ascending key order."""
        prefix = namespace_prefix(namespace)
        for key, value in self.iter_state(prefix):
            yield key[len(prefix) :], value

    def child(self) -> StateView:
        """A view over this one, e.g. for one transaction; ``merge`` its delta back."""
        return StateView(self)

    def merge(self, delta: Mapping[bytes, bytes | None]) -> None:
        """Apply ``delta`` (typically a child view's) to this view's pending writes."""
        self._pending.update(delta)

    def merge_delta(self, delta: StateDelta) -> None:
        """``merge`` of a ``StateDelta`` in one call (its changes were checked when set):
        the mempool's rebuild merges every survivor's."""
        self._pending._changes.update(delta._changes)

    def rebase(self, base: StateReader, unwritten: Iterable[bytes]) -> None:
        """Read through ``base`` from now on, and drop the writes to ``unwritten``: for
        the mempool's pending view, when a block moved the state under it
        (``ledger.pending_index`` shows which writes still stand)."""
        self._base = base
        changes = self._pending._changes
        for key in unwritten:
            changes.pop(key, None)

    def delta(self) -> StateDelta:
        """A copy of the writes made through this view, in order of first write."""
        return self._pending.copy()
