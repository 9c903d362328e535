"""The state at a recent height: an undo log the store keeps for a window of heights.

Why: "the loans of B at height h" and an exposure proof made at h must be
answerable after the chain has moved on (issue 11), and a verifier should not
need a node whose tip happens to be h. The store keeps, for every state key a
block changes, the value the key had before that block (its *undo* entry).
The state at h is then the current state with, for every key changed after h,
the value before its first change after h. This is generic, so every reader
of the state (``loans_of``, ``exposure_problem``, ``min_balance_problem``,
``report_problem``) works unchanged on ``StateAt``.

Retention: undo entries are kept for ``history_heights`` heights. The store
answers every height in ``[history_floor, tip]``, where the floor is
``max(first height with history, tip − history_heights)``; it is persisted, so
reopening with a larger window never claims heights whose entries were pruned.
Entries at heights at or below the floor are deleted in the block's own write
batch, so the log never outgrows the window and a crash leaves it whole.

Key layout (next to ``ledger.store``'s tables; ``u64`` is 8 bytes big-endian)::

    "U" state_key u64 height -> b"\\x00" (the key was absent) | b"\\x01" old value
    "V" u64 height           -> the keys the height changed (for pruning): each as
                                u16 length, then its bytes
    0x00 "history_floor"     -> u64      (the lowest height ``state_at`` answers)

A ``"U"`` key ends in its 8-byte height, so ``raw[1:-8]`` is the state key even
when another state key has this one as a prefix.

One ``"V"`` record a height, not one per changed key (``"V" u64 height
state_key -> b""``, as stores before the twenty-fifth session wrote them, and
still pruned): a key's record and, 1,024 heights later, its deletion were two
of the eleven LevelDB records an attest cost, and the replay of an attest
chain spends about a sixth less of LevelDB's CPU without them
(docs/performance.md, "One changed-keys record a height").
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, Protocol

UNDO_PREFIX: Final = b"U"
CHANGED_PREFIX: Final = b"V"
HISTORY_FLOOR_KEY: Final = b"\x00history_floor"
DEFAULT_STATE_HISTORY_HEIGHTS: Final = 1024
"""Four times the consensus request-id window (256 heights): a proof made at h
stays checkable for 1024 blocks after h."""

_ABSENT: Final = b"\x00"
_PRESENT: Final = b"\x01"
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_HEIGHT_BYTES: Final = 8


class HistoryBackend(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


def _u64(value: int) -> bytes:
    return _U64.pack(value)


def encode_old(value: bytes | None) -> bytes:
    return _ABSENT if value is None else _PRESENT + value


def decode_old(raw: bytes) -> bytes | None:
    return None if raw == _ABSENT else raw[1:]


def undo_key(state_key: bytes, height: int) -> bytes:
    return UNDO_PREFIX + state_key + _u64(height)


def split_undo_key(raw: bytes) -> tuple[bytes, int]:
    """(state key, height) of a ``"U"`` key."""
    return raw[1:-_HEIGHT_BYTES], int(_U64.unpack(raw[-_HEIGHT_BYTES:])[0])


def next_floor(old_floor: int, height: int, history_heights: int) -> int:
    """The floor after committing ``height``: never below the old one (pruned is gone)."""
    return max(old_floor, height - history_heights, 0)


class HistoryCorruptError(ValueError):
    """A changed-keys record that does not decode: the store's own data is damaged."""


def encode_changed_keys(keys: Iterable[bytes]) -> bytes:
    """Each key as its u16 length, then its bytes."""
    parts: list[bytes] = []
    for key in keys:
        if len(key) > 0xFFFF:
            raise ValueError(f"a state key of {len(key)} bytes: at most 65535")
        parts.append(_U16.pack(len(key)))
        parts.append(key)
    return b"".join(parts)


def decode_changed_keys(raw: bytes) -> list[bytes]:
    """``encode_changed_keys``'s keys; ``HistoryCorruptError`` if ``raw`` is not that."""
    keys: list[bytes] = []
    at = 0
    while at < len(raw):
        if at + 2 > len(raw):
            raise HistoryCorruptError("a changed-keys record ends inside a length")
        (length,) = _U16.unpack_from(raw, at)
        at += 2
        if at + length > len(raw):
            raise HistoryCorruptError("a changed-keys record ends inside a key")
        keys.append(raw[at : at + length])
        at += length
    return keys


def undo_writes(
    current: Callable[[bytes], bytes | None], height: int, delta: Mapping[bytes, bytes | None]
) -> list[tuple[bytes, bytes]]:
    """The undo entries of a block at ``height`` that changes ``delta``, and the
    height's changed-keys record; ``current(key)`` reads a key's value before the block."""
    if not delta:
        return []
    writes = [(undo_key(key, height), encode_old(current(key))) for key in delta]
    writes.append((CHANGED_PREFIX + _u64(height), encode_changed_keys(delta)))
    return writes


def prune_writes(
    backend: HistoryBackend, old_floor: int, new_floor: int
) -> list[tuple[bytes, None]]:
    """Deletes of the undo entries at heights in ``(old_floor, new_floor]``: no height
    the store still answers needs them (the state at h uses entries above h).
    ``HistoryCorruptError`` if a height's changed-keys record does not decode."""
    deletes: list[tuple[bytes, None]] = []
    for height in range(old_floor + 1, new_floor + 1):
        prefix = CHANGED_PREFIX + _u64(height)
        for raw, value in backend.iterate(prefix):
            deletes.append((raw, None))
            # The height's one record, or (a store written before) one record a key.
            keys = decode_changed_keys(value) if raw == prefix else [raw[len(prefix) :]]
            deletes.extend((undo_key(key, height), None) for key in keys)
    return deletes


def read_floor(backend: HistoryBackend) -> int | None:
    raw = backend.get(HISTORY_FLOOR_KEY)
    return None if raw is None else int(_U64.unpack(raw)[0])


def floor_write(floor: int) -> tuple[bytes, bytes]:
    return (HISTORY_FLOOR_KEY, _u64(floor))


class StateAt:
    """A ``StateReader`` of the state after the block at ``height`` (read-only).

    ``state_prefix`` is the store's table prefix of the current state. Made by
    ``KeyValueStore.state_at``, which checks the height is retained.
    """

    __slots__ = ("_backend", "_state_prefix", "height")

    def __init__(self, backend: HistoryBackend, state_prefix: bytes, height: int) -> None:
        self._backend = backend
        self._state_prefix = state_prefix
        self.height = height

    def _first_change_after(self, prefix: bytes) -> dict[bytes, bytes | None]:
        """For each state key under ``prefix`` changed after ``height``: its value then."""
        found: dict[bytes, bytes | None] = {}
        for raw, old in self._backend.iterate(UNDO_PREFIX + prefix):
            key, changed_at = split_undo_key(raw)
            # A key's entries come in ascending height: the first above h is the one.
            if changed_at > self.height and key not in found:
                found[key] = decode_old(old)
        return found

    def get_state(self, key: bytes) -> bytes | None:
        for raw, old in self._backend.iterate(UNDO_PREFIX + key):
            found_key, changed_at = split_undo_key(raw)
            if found_key == key and changed_at > self.height:
                return decode_old(old)
        return self._backend.get(self._state_prefix + key)

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs under ``prefix`` as they were at ``height``, in key order."""
        changed = self._first_change_after(prefix)
        skip = len(self._state_prefix)
        now = {
            raw[skip:]: value for raw, value in self._backend.iterate(self._state_prefix + prefix)
        }
        for key in sorted(set(now) | set(changed)):
            value = changed[key] if key in changed else now[key]
            if value is not None:
                yield key, value
