"""Mempool admission in two phases: first the cheap checks, then the range proof.

Phase 1, ``PendingTxs.precheck(dtx)``, works from an already decoded tx (the
node decodes each request once) and runs every check but the range proof,
against the committed state plus the txs already admitted:

1. the tx id is neither committed nor already admitted (``DUPLICATE_TX``: an
   identical resubmission is a duplicate, whatever its nonce or inputs say);
2. stateless (``rules.check_stateless``): size, structure, points, memo keys,
   signatures, a registration's proof of possession, approvals, an issue's
   excess proof;
3. stateful (``rules.apply_tx`` on a child view): registration, membership,
   inputs, the transfer's excess proof, nonce, supply. With
   ``defer_excess=True`` the excess proofs are returned unchecked
   (``CheckedTx.excess_checks``) for the node to check a batch of them at once
   (``privacy.excess_batch``); ``recheck`` runs this step with them checked.

It returns a ``CheckedTx`` (the tx's writes and its range statement) and
changes nothing. Phase 2 verifies the range statement: ``admit_tx`` does it in
process (through a ``ProofCache`` if given); a node with a process pool sends
``cache.unseen(checked.statements)`` to its workers, marks the statements
that verified with ``cache.mark_verified`` and calls ``pending.accept``.
``accept`` revalidates the tx if other txs were accepted in between (their
writes may conflict), so phase 2 may run concurrently for many txs.

After a block commits, the node builds a new ``PendingTxs`` over the new state
and re-admits what is left with ``readmit`` (the cache keeps the proofs).

Revalidation (``accept`` after a change, ``readmit``) never repeats the
stateless checks: they depend on the tx bytes and the chain only. The stateful
part is a deterministic function of the state values it read, and phase 1
records them (``CheckedTx.reads``, through ``RecordingView``). If every key it
read still holds the same value in the pending view, the tx would write exactly
the same delta, so that delta is merged as it is; if only asset totals moved
(every transfer of an asset advances them) the delta is rebased onto them
(``ledger.recorded_apply.writes_on``); otherwise (or when a rule scanned a key
range, which is not recorded) ``apply_tx`` runs again. This keeps
a block's cost for the mempool at a few key lookups per surviving tx instead of
its signatures, excess proof and decoding again: with thousands of txs pending,
re-running phase 1 for each after every block stalled the node's event loop
for seconds (measured with ``benchmarks.load``, see docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ledger.genesis import Genesis
from ledger.proof_cache import ProofCache
from ledger.reasons import Reason, TxRejected
from ledger.recorded_apply import AppliedTx, RecordingView, writes_on
from ledger.rules import Receipt, apply_tx, check_stateless, range_statement
from ledger.state import StateDelta, StateView
from ledger.store import StoreReader
from ledger.tx import DecodedTx, decode_tx
from privacy.rangeproof import RangeProofError, RangeStatement, verify_range
from privacy.sigma import ExcessCheck, deferring_excess_checks


@dataclass(frozen=True, slots=True)
class CheckedTx:
    """A tx that passed phase 1 on top of the pending txs as they were (``pending_version``)."""

    dtx: DecodedTx
    receipt: Receipt
    delta: StateDelta
    statement: RangeStatement | None
    pending_version: int
    reads: Mapping[bytes, bytes | None] | None = None
    """Every state key ``apply_tx`` read, with the value it saw; None when a rule
    scanned a key range (so only running it again can tell). See
    ``ledger.recorded_apply`` for why these decide the tx."""
    excess_checks: tuple[ExcessCheck, ...] = ()
    """Balance proofs ``precheck(defer_excess=True)`` took as valid without
    checking them: the caller verifies them (``privacy.excess_batch``) before the
    tx may be accepted, and calls ``recheck`` if one is bad."""

    @property
    def statements(self) -> tuple[RangeStatement, ...]:
        """The output proof's statement and those the rules derived from the state."""
        own = (self.statement,) if self.statement is not None else ()
        return own + self.receipt.range_statements

    @property
    def applied(self) -> AppliedTx | None:
        """Its stateful result for reuse where its reads hold (``ledger.recorded_apply``);
        None when a rule scanned a key range."""
        if self.reads is None:
            return None
        return AppliedTx(self.receipt, self.delta, self.reads)


class PendingTxs:
    """The mempool's admitted, not yet committed txs: their combined writes and their ids."""

    def __init__(self, state: StoreReader, genesis: Genesis) -> None:
        self._state = state
        self._genesis = genesis
        self.view = StateView(state)
        self._tx_ids: set[bytes] = set()
        self._version = 0

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._tx_ids

    def __len__(self) -> int:
        return len(self._tx_ids)

    def precheck(
        self,
        dtx: DecodedTx,
        *,
        duplicates_checked: bool = False,
        defer_excess: bool = False,
        signature_ok: bool | None = None,
    ) -> CheckedTx:
        """Phase 1: every check but the range proof. Raises ``TxRejected``; writes nothing.

        ``duplicates_checked``: the caller has just found the tx neither here nor
        committed (the node's mempool does, before its capacity checks), so the
        tx index is not read a second time for it. ``defer_excess``: the stateful
        balance proofs are not checked but returned (``CheckedTx.excess_checks``)
        for the caller to verify in a batch with other txs'. ``signature_ok``: the
        sender signature's verdict under ``ledger.signature_rule``, found by the
        caller in a batch (None: checked here)."""
        if not duplicates_checked:
            self._check_unseen(dtx.tx_id)
        genesis = self._genesis
        check_stateless(
            dtx,
            genesis.chain_id,
            max_tx_bytes=genesis.params.max_tx_bytes,
            signature_ok=signature_ok,
        )
        if not defer_excess:
            return self._stateful(dtx)
        try:
            with deferring_excess_checks() as deferred:
                checked = self._stateful(dtx)
        except TxRejected:
            if not deferred:
                raise
            # A rule after a deferred balance proof refused the tx, but a bad proof
            # is the earlier reason: the rules again, checking it, give the tx's own.
            return self._stateful(dtx)
        # Most txs defer nothing (an attest has no balance proof): no copy for them.
        return replace(checked, excess_checks=tuple(deferred)) if deferred else checked

    def recheck(self, checked: CheckedTx) -> CheckedTx:
        """Phase 1's stateful checks again, with every balance proof checked (the
        remembered answers of ``privacy.sigma`` included): the exact ``TxRejected``
        of a tx whose deferred balance proof turned out bad."""
        return self._stateful(checked.dtx)

    def _stateful(self, dtx: DecodedTx) -> CheckedTx:
        child = RecordingView(self.view)
        receipt = apply_tx(child, dtx)
        reads = None if child.scanned else child.reads
        return CheckedTx(dtx, receipt, child.delta(), range_statement(dtx), self._version, reads)

    def _current(self, checked: CheckedTx) -> CheckedTx | None:
        """``checked`` on the pending view as it is now, without running the rules:
        itself if what it read is unchanged, rebased if only asset totals moved
        (``ledger.recorded_apply.writes_on``); None if the rules must run again."""
        reads = checked.reads
        if reads is None:
            return None
        found = writes_on(reads, checked.delta, self.view)
        if found is None:
            return None
        delta, new_reads = found
        if delta is checked.delta:
            return checked
        return replace(checked, delta=delta, reads=new_reads, pending_version=self._version)

    def revalidate(self, checked: CheckedTx) -> CheckedTx:
        """``checked`` against the pending txs as they are now: the same writes if
        what it read is unchanged, else the stateful checks again (``TxRejected``)."""
        if checked.pending_version == self._version:
            return checked
        fitting = self._fitting(checked)
        if fitting is checked:
            return replace(checked, pending_version=self._version)
        return fitting

    def _check_unseen(self, tx_id: bytes) -> None:
        if tx_id in self._tx_ids:
            raise TxRejected(Reason.DUPLICATE_TX, "tx already in the mempool")
        if self._state.tx_location(tx_id) is not None:
            raise TxRejected(Reason.DUPLICATE_TX, "tx already committed")

    def _fitting(self, checked: CheckedTx, *, duplicates_checked: bool = False) -> CheckedTx:
        """``checked`` itself if it is new here and what it read is unchanged, else it
        rechecked over the pending txs as they are now (``TxRejected``)."""
        if not duplicates_checked:
            self._check_unseen(checked.dtx.tx_id)
        current = self._current(checked)
        if current is not None:
            return current
        rechecked = self._stateful(checked.dtx)
        # A loan's derived statements follow the pending state: verify any new one.
        for statement in rechecked.statements:
            if statement not in checked.statements:
                verify_statement(statement, None)
        return rechecked

    def accept(self, checked: CheckedTx) -> Receipt:
        """Add a tx whose range proof verified. Raises ``TxRejected`` if txs accepted
        since its precheck now conflict with it (see the module docstring)."""
        checked = self.revalidate(checked)
        if checked.dtx.tx_id in self._tx_ids:
            raise TxRejected(Reason.DUPLICATE_TX, "tx already in the mempool")
        self._add(checked)
        return checked.receipt

    def _add(self, checked: CheckedTx) -> None:
        self.view.merge(checked.delta)
        self._tx_ids.add(checked.dtx.tx_id)
        self._version += 1

    def readmit_unchanged(self, checked: CheckedTx) -> None:
        """Re-add a tx a previous ``PendingTxs`` accepted, as it is: for a caller that
        has shown every key it read holds here the value it read (so the rules would
        write the same delta; ``node.mempool``'s rebuild tracks the keys that may
        have changed), and that it is neither here nor committed."""
        # _add's body with one call level fewer: this runs for most survivors of
        # every block.
        self.view.merge_delta(checked.delta)
        self._tx_ids.add(checked.dtx.tx_id)
        self._version += 1

    def advance(
        self, state: StoreReader, committed: Iterable[bytes], unwritten: Iterable[bytes]
    ) -> None:
        """Move onto ``state``, which committed the txs ``committed``: for a caller that
        has shown every other tx here reads there what it read, so keeps its writes
        (``ledger.pending_index``); ``unwritten`` are the keys none of them writes."""
        self._state = state
        self.view.rebase(state, unwritten)
        self._tx_ids.difference_update(committed)
        self._version += 1

    def readmit(self, checked: CheckedTx, *, duplicates_checked: bool = False) -> CheckedTx:
        """Re-add a tx a previous ``PendingTxs`` accepted (its proofs verified then);
        raises ``TxRejected`` if it no longer fits. Returns what was added here (the
        same object when its reads are unchanged: this runs for every pending tx
        after every block, so it copies nothing). ``duplicates_checked`` as for
        ``precheck``: the caller re-adds distinct txs it found uncommitted."""
        current = self._current(checked) if duplicates_checked else None
        if current is not None:
            fitting = current  # the common case, without _fitting's call
        else:
            fitting = self._fitting(checked, duplicates_checked=duplicates_checked)
        self._add(fitting)
        return fitting


def verify_statement(statement: RangeStatement | None, proof_cache: ProofCache | None) -> None:
    """Phase 2 in process: the tx's range proof, or ``TxRejected(BAD_RANGE_PROOF)``."""
    if statement is None:
        return
    try:
        if proof_cache is not None:
            proof_cache.verify(statement)
        else:
            verify_range(statement)
    except RangeProofError as exc:
        raise TxRejected(Reason.BAD_RANGE_PROOF, f"{exc.reason}") from None


def admit_decoded(
    pending: PendingTxs, dtx: DecodedTx, *, proof_cache: ProofCache | None = None
) -> Receipt:
    """Both phases in process: precheck, verify the proof, accept. Raises ``TxRejected``."""
    checked = pending.precheck(dtx)
    for statement in checked.statements:
        verify_statement(statement, proof_cache)
    return pending.accept(checked)


def admit_tx(
    state: StoreReader,
    tx_bytes: bytes,
    genesis: Genesis,
    *,
    pending: PendingTxs | None = None,
    proof_cache: ProofCache | None = None,
) -> tuple[DecodedTx, Receipt]:
    """Decode ``tx_bytes`` and admit it: every check of one tx, proof included.

    With ``pending`` (built over ``state``), the tx is checked on top of the
    txs already admitted and added to them on success; without it, against the
    committed state alone and nothing is kept. Raises ``TxRejected``.
    """
    dtx = decode_tx(tx_bytes, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes)
    target = pending if pending is not None else PendingTxs(state, genesis)
    return dtx, admit_decoded(target, dtx, proof_cache=proof_cache)
