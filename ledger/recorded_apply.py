"""``apply_tx`` as a function of the state values it read, so a result can be reused.

``rules.apply_tx(view, dtx)`` reads the state only through ``view.get_state``
and ``view.iter_state`` and depends on nothing else but ``dtx``: given the
same tx and the same answers to its reads, it makes the same writes and
returns the same receipt, or raises the same rejection. ``RecordingView``
remembers the first value read for every key the tx did not write itself, and
whether a rule scanned a key range (which is not recorded). An ``AppliedTx``
(receipt, writes, reads) of an accepted tx is therefore what ``apply_tx``
gives on any view where every recorded key still holds its recorded value,
whatever else that view holds (``AppliedTx.on`` checks it).

The node applies each tx at admission (the mempool's precheck) and again when
its block executes, mostly on the same values (a bank's member record, its
last nonce, a transfer's inputs). ``execute_batch`` takes the admission's
``AppliedTx`` for the exact payload bytes (``ledger.stateless_cache``) and
merges its writes when they hold in its view (``AppliedTx.on``), instead of
deciding the tx again; otherwise it runs ``apply_tx``. The mempool's rebuild
after a block uses the same argument (``ledger.mempool``).

One kind of read is not a condition but a sum: every transfer, issue and
loan payment of an asset advances that asset's record (its issued total and
excess sum), so a recorded result would hold only in the very order it was
recorded in, and a backup, whose mempool saw the txs in another order than
the primary, or a rebuild after a block would decide every such tx again.
Where only those totals moved, ``writes_on`` rebases the recorded write of
the record onto its current value instead (``rules.rebase_asset_totals`` says
why that is ``apply_tx``'s outcome).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ledger.rules import Receipt, rebase_asset_totals
from ledger.state import NS_ASSET, StateDelta, StateReader, StateView, state_key

ASSET_PREFIX = state_key(NS_ASSET, b"")

Reads = Mapping[bytes, bytes | None]


class RecordingView(StateView):
    """A child view that remembers the first value it read for every key it did
    not write itself, and whether any rule scanned a range (``iter_state``)."""

    __slots__ = ("reads", "scanned")

    def __init__(self, base: StateReader) -> None:
        super().__init__(base)
        self.reads: dict[bytes, bytes | None] = {}
        self.scanned = False

    def get_state(self, key: bytes) -> bytes | None:
        value = super().get_state(key)
        if key not in self.reads and key not in self._pending._changes:
            self.reads[key] = value
        return value

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        self.scanned = True
        return super().iter_state(prefix)


@dataclass(frozen=True, slots=True)
class AppliedTx:
    """An accepted tx's ``apply_tx`` result and every state value it read (no scans)."""

    receipt: Receipt
    delta: StateDelta
    """Its writes; never changed after construction (merged by copying)."""
    reads: Reads

    def on(self, view: StateReader) -> AppliedTx | None:
        """What ``apply_tx`` gives on ``view``: this result itself where its reads hold,
        rebased where only asset totals moved (``writes_on``), else None."""
        found = writes_on(self.reads, self.delta, view)
        if found is None:
            return None
        delta, reads = found
        return self if delta is self.delta else AppliedTx(self.receipt, delta, reads)


def writes_on(
    reads: Reads, delta: StateDelta, view: StateReader
) -> tuple[StateDelta, Reads] | None:
    """A recorded result's (writes, reads) on ``view``: these very objects when every
    read holds there; copies with each asset record the tx advanced rebased onto its
    current value when only asset totals moved; None when ``apply_tx`` must run."""
    get = view.get_state
    rebased: list[tuple[bytes, bytes, bytes]] = []
    for key, value in reads.items():
        current = get(key)
        if current == value:
            continue
        written = delta.get(key)
        if value is None or current is None or written is None:
            return None
        if not key.startswith(ASSET_PREFIX):
            return None
        moved = rebase_asset_totals(value, written, current)
        if moved is None:
            return None
        rebased.append((key, current, moved))
    if not rebased:
        return delta, reads
    new_delta, new_reads = delta.copy(), dict(reads)
    for key, current, moved in rebased:
        new_delta.put(key, moved)
        new_reads[key] = current
    return new_delta, new_reads
