"""The pending txs that read and that write each state key, in the mempool's order:
after a block, the rebuild looks at the keys the block and the txs it committed
wrote, not at every survivor.

The setting is ``ledger.pending_changes``'s: p_1 … p_m pending in order, p_i
checked on V_i = S ⊕ Δ_1 ⊕ … ⊕ Δ_{i-1} with the reads it recorded, so its
recorded read of k *is* V_i[k]. Block B commits some of them (the removed set R)
and writes D_B, so S' = S ⊕ D_B. Every survivor keeps its Δ iff V'_i agrees
with V_i on every key it read, where V'_i = S' ⊕ the survivors' Δ before i.

Take a key k. If neither B nor a removed tx wrote k, the writers of k before any
position are the same survivors on both sides, over S[k] = S'[k]: agreed. Else,
let w be the first survivor that writes k, and require that every removed
writer of k comes before w (the *prefix* condition). Then:

* a position after w has the same last writer of k on both sides, a survivor
  with an unchanged Δ: agreed;
* a position up to w has no surviving writer before it, so V'_i[k] = S'[k],
  and the survivor there that read k agrees iff its recorded read equals S'[k].
  Only those readers are compared.

So ``unchanged_after`` costs the removed txs' writes plus the few readers up to
each key's first surviving writer: a sender's nonce is read and written by each
of its txs, so that is one comparison per sender, whatever the backlog. If all
agree, the rebuilt view is the old one without the removed txs: a key some
survivor writes keeps the last survivor's value (the prefix condition makes the
last writer a survivor); a key none writes now reads S'. Without the prefix, or
when a survivor scanned a key range (no recorded reads), it answers None and the
caller rebuilds in full. ``tests/property/test_mempool_rebuild_differential.py``
checks it against the rebuild that looks every survivor's reads up.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from ledger.state import StateReader

Value = bytes | None


class PendingIndex:
    """For each state key, the pending txs that read it and those that write it, with
    their positions, in pending order. ``add`` each accepted tx at the end; ``remove``
    the ones a block took; after a rebuild in full, ``rebuild`` it from the survivors."""

    __slots__ = ("_next", "_readers", "_txs", "_unrecorded", "_writers")

    def __init__(self) -> None:
        self._readers: dict[bytes, dict[bytes, int]] = {}
        self._writers: dict[bytes, dict[bytes, int]] = {}
        self._txs: dict[bytes, tuple[Mapping[bytes, Value] | None, Collection[bytes]]] = {}
        self._unrecorded = 0
        """Txs indexed without recorded reads (a rule scanned a key range)."""
        self._next = 0

    def __len__(self) -> int:
        return len(self._txs)

    def add(
        self, tx_id: bytes, reads: Mapping[bytes, Value] | None, writes: Collection[bytes]
    ) -> None:
        """A tx accepted after every indexed one."""
        position = self._next
        self._next = position + 1
        self._txs[tx_id] = (reads, writes)
        if reads is None:
            self._unrecorded += 1
        for index, keys in ((self._readers, reads or ()), (self._writers, writes)):
            for key in keys:
                found = index.get(key)
                if found is None:
                    index[key] = {tx_id: position}
                else:
                    found[tx_id] = position

    def remove(self, tx_id: bytes) -> None:
        reads, writes = self._txs.pop(tx_id)
        if reads is None:
            self._unrecorded -= 1
        for index, keys in ((self._readers, reads or ()), (self._writers, writes)):
            for key in keys:
                found = index[key]
                del found[tx_id]
                if not found:
                    del index[key]

    def rebuild(
        self, txs: Iterable[tuple[bytes, Mapping[bytes, Value] | None, Collection[bytes]]]
    ) -> None:
        """Start again from ``txs`` (id, reads, writes), in pending order."""
        self._readers, self._writers, self._txs = {}, {}, {}
        self._unrecorded = 0
        for tx_id, reads, writes in txs:
            self.add(tx_id, reads, writes)

    def unchanged_after(
        self,
        removed: Collection[bytes],
        block_writes: Mapping[bytes, Value],
        new_state: StateReader,
    ) -> list[bytes] | None:
        """If every indexed tx not in ``removed`` reads over ``new_state`` (the state
        ``block_writes`` led to) what it recorded, at its place among the others, the
        keys that none of them writes (their pending value must go: ``new_state``'s
        shows); else None. ``removed`` are indexed ids. See the module docstring."""
        txs = self._txs
        if self._unrecorded and self._unrecorded > sum(1 for t in removed if txs[t][0] is None):
            return None  # a survivor's reads are not known
        keys = set(block_writes)
        removed_writes = 0
        for tx_id in removed:
            writes = txs[tx_id][1]
            removed_writes += len(writes)
            keys.update(writes)
        writers, readers = self._writers, self._readers
        unwritten: list[bytes] = []
        prefix_writes = 0
        for key in keys:
            first_writer = None
            key_writers = writers.get(key)
            if key_writers:
                for tx_id, position in key_writers.items():
                    if tx_id not in removed:
                        first_writer = position
                        break
                    prefix_writes += 1
            if first_writer is None:
                unwritten.append(key)
            key_readers = readers.get(key)
            if not key_readers:
                continue
            new_value = block_writes[key] if key in block_writes else new_state.get_state(key)
            for tx_id, position in key_readers.items():
                if first_writer is not None and position > first_writer:
                    break
                if tx_id in removed:
                    continue
                recorded = txs[tx_id][0]
                if recorded is None or recorded[key] != new_value:
                    return None
        # Each removed tx is a writer of each key it wrote; the walks above counted the
        # ones before their key's first surviving writer. Fewer: one came after it.
        if prefix_writes != removed_writes:
            return None
        return unwritten
