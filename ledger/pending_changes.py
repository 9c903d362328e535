"""Which state keys a survivor of a block may read differently: the mempool's rebuild
re-adds the others' recorded results without looking their reads up.

After block B commits, the pending txs p_1 … p_m (in the mempool's order, each
with the reads it recorded and its delta Δ_i) are rebuilt over the new state.
Before, p_i was checked on

    V_i  = S  ⊕ Δ_1 ⊕ … ⊕ Δ_{i-1}             (all pending txs before it)

and now it is re-added on

    V'_i = S' ⊕ Δ'_j … for the survivors j < i  (S' = S ⊕ D_B, Δ'_j as re-added)

``apply_tx`` is a deterministic function of the values it read
(``ledger.recorded_apply``), so if V'_i agrees with V_i on every key p_i read, it
writes the same Δ_i and needs no lookups. ``PendingChanges`` walks the old order
alongside the rebuild and keeps, for the keys where the two views may differ,
the value each holds at the current position:

* D_B's keys start with the block's value on the new side and an unknown one
  (S, not read) on the old side;
* a removed tx (committed, rejected by a block, or no longer fitting) moves the
  old side of each key it wrote to its value; the new side of a key not yet
  tracked keeps the value both sides shared, which was not read (unknown);
* a survivor re-added with its old Δ writes the same value on both sides, so
  its keys agree again;
* a survivor whose delta changed (rebased, or the rules ran again) writes Δ on
  the old side and Δ' on the new.

A key outside the tracked ones was written by the same survivors in the same
order on both sides and left alone by B, so it agrees; a tracked key whose
sides turn out equal is dropped, so ``differing`` is the tracked keys (an
unknown side equals nothing). A committed tx's last write usually restores agreement: the block
leaves a sender's nonce where the sender's last committed tx left it, so the
survivors after it read the same nonce and are re-added as they are.
``tests/property/test_pending_changes.py`` checks the invariant against the
views built in full.
"""

from __future__ import annotations

from collections.abc import KeysView, Mapping

Value = bytes | None

_UNKNOWN_OLD = object()
"""S's value of a key the block wrote: not read, so equal to nothing."""
_UNKNOWN_NEW = object()
"""The new view's value of a key a removed tx wrote while it was not tracked: the
value both views shared there, not read, so equal to nothing."""


class PendingChanges:
    """The keys on which the rebuilt pending view may differ from the old one, at
    the current position of a walk over the old pending order (see the module
    docstring). Feed it every old pending tx, in order, with ``removed``, ``kept``
    or ``replaced``; ask ``same_reads`` before re-adding a survivor."""

    __slots__ = ("_new", "_old")

    def __init__(self, block_writes: Mapping[bytes, Value]) -> None:
        # Both sides of each key that may differ; a key found equal is dropped
        # (untracked keys agree), so the common survivor costs one disjointness test.
        self._old: dict[bytes, object] = dict.fromkeys(block_writes, _UNKNOWN_OLD)
        self._new: dict[bytes, object] = dict(block_writes.items())

    @property
    def differing(self) -> KeysView[bytes]:
        """The keys whose values in the two views are not known to be equal here (a
        live view: the rebuild's loop tests it without a call per survivor)."""
        return self._new.keys()

    def same_reads(self, reads: Mapping[bytes, Value]) -> bool:
        """Whether every key in ``reads`` holds the same value in both views here."""
        return self._new.keys().isdisjoint(reads)

    def removed(self, delta: Mapping[bytes, Value]) -> None:
        """An old pending tx that is not in the rebuilt view."""
        old, new = self._old, self._new
        for key, value in delta.items():
            if new.get(key, _UNKNOWN_NEW) == value:  # an unknown side equals nothing
                del old[key], new[key]
            else:
                old[key] = value
                new.setdefault(key, _UNKNOWN_NEW)  # was equal: to a value not read

    def kept(self, delta: Mapping[bytes, Value]) -> None:
        """A survivor re-added with the delta it had: both views get its writes."""
        new = self._new
        if new.keys().isdisjoint(delta.keys()):
            return  # the common case
        old = self._old
        for key in delta:
            if key in new:
                del old[key], new[key]

    def replaced(self, before: Mapping[bytes, Value], after: Mapping[bytes, Value]) -> None:
        """A survivor re-added with another delta than it had (``after``)."""
        old, new = self._old, self._new
        for key in before.keys() | after.keys():
            old_value = before[key] if key in before else old.get(key, _UNKNOWN_OLD)
            new_value = after[key] if key in after else new.get(key, _UNKNOWN_NEW)
            if old_value == new_value:
                old.pop(key, None)
                new.pop(key, None)
            else:
                old[key], new[key] = old_value, new_value
