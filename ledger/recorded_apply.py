"""``apply_tx`` as a function of the state values it read, so a result can be reused.

``rules.apply_tx(view, dtx)`` reads the state only through ``view.get_state``
and ``view.iter_state`` and depends on nothing else but ``dtx``: given the
same tx and the same answers to its reads, it makes the same writes and
returns the same receipt, or raises the same rejection. ``RecordingView``
remembers the first value read for every key the tx did not write itself, and
whether a rule scanned a key range (which is not recorded). An ``AppliedTx``
(receipt, writes, reads) of an accepted tx is therefore what ``apply_tx``
gives on any view where every recorded key still holds its recorded value
(``holds_in``), whatever else that view holds.

The node applies each tx at admission (the mempool's precheck) and again when
its block executes, mostly on the same values (a bank's member record, its
last nonce, a transfer's inputs). ``execute_batch`` takes the admission's
``AppliedTx`` for the exact payload bytes (``ledger.stateless_cache``) and
merges its writes when ``holds_in`` its view, instead of deciding the tx
again; otherwise it runs ``apply_tx``. The mempool's rebuild after a block
uses the same argument (``ledger.mempool``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ledger.rules import Receipt
from ledger.state import StateDelta, StateReader, StateView


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
        if key not in self.reads and key not in self._pending:
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
    reads: Mapping[bytes, bytes | None]

    def holds_in(self, view: StateReader) -> bool:
        """Every key it read has the same value in ``view``: ``apply_tx`` there would
        accept it with this very receipt and these very writes."""
        get = view.get_state
        return all(get(key) == value for key, value in self.reads.items())
