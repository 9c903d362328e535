"""``apply_block``, the executable spec of a block, and ``admit_tx`` for mempool admission.

Order of checks in ``apply_block`` (the first failure decides the reason, so
every node rejects a bad block with the same code):

1. header: version, height, prev hash, proposer (primary of the view),
   timestamp not before the parent's, tx count, tx root (``ledger.block``);
2. for each tx, in block order:
   a. decode (``MALFORMED`` / ``UNKNOWN_KIND``), size (``TOO_LARGE``),
   b. duplicate id, in the block or already committed (``DUPLICATE_TX``),
   c. stateless checks (``ledger.rules.check_stateless``: structure, points,
      signatures, issue balance), range statement collected, not verified,
   d. stateful checks and writes through a child view of the pending state
      (``ledger.rules.apply_tx``): a later tx sees an earlier tx's outputs and
      spends, so spending an output created earlier in the block is valid and
      spending one twice in the block is ``DOUBLE_SPEND`` at the second spend;
3. every range proof of the block in ONE batch verification that stops at the
   first bad proof (``batch_verify_first_failure``: a block full of bad proofs
   costs about as much as one bad proof); that lowest bad index gives
   ``BAD_RANGE_PROOF`` at that tx;
4. the clock record, then the state root after the block must equal the
   header's (``BAD_STATE_ROOT``).

Range proofs are last because they are by far the most expensive check and a
block is all-or-nothing: a block that fails anything cheaper never pays for
them. The result is deterministic either way.

``propose_block`` is what a primary runs: it drops invalid txs (re-running
until the remaining set is valid as a whole, since a dropped tx may have
created an output a later tx spends) and fills in the roots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.block import (
    BLOCK_OVERHEAD_BYTES,
    BLOCK_VERSION,
    MAX_BLOCK_BYTES,
    Block,
    BlockHeader,
    ChainTip,
    block_hash,
    check_header,
    primary_for_view,
    tx_root,
)
from ledger.codec import encode_value
from ledger.genesis import Genesis
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.rules import (
    META_CLOCK,
    NS_META,
    ClockRecord,
    Receipt,
    apply_tx,
    check_stateless,
    genesis_delta,
    get_clock,
    range_statement,
)
from ledger.state import StateDelta, StateView, state_key
from ledger.store import Store, TxLocation
from ledger.tx import DecodedTx, Tx, decode_envelope, decode_tx, encoded_size
from privacy.rangeproof import (
    RangeProofError,
    RangeStatement,
    batch_verify,
    batch_verify_first_failure,
    verify_range,
)

RangeVerifier = Callable[[Sequence[RangeStatement]], list[int]]
"""``privacy.rangeproof.batch_verify``'s contract: indices of the bad statements
(a block verifier may return only the lowest one, as ``batch_verify_first_failure``)."""


class ChainState(Protocol):
    """What the rules read: the committed state and tip. ``ledger.store.Store`` is one."""

    def get_state(self, key: bytes) -> bytes | None: ...
    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...
    def preview_state_root(self, delta: Mapping[bytes, bytes | None]) -> bytes: ...
    def height(self) -> int: ...
    def tip_hash(self) -> bytes | None: ...
    def tx_location(self, tx_id: bytes) -> TxLocation | None: ...


class ProofCache:
    """Range statements this node has already verified, so each proof is checked once.

    Keyed by SHA-256 over the whole statement (bits, transcript, label, every
    commitment, the proof bytes): a hit is the very same claim with the very
    same proof. Bounded: the oldest entries go first.
    """

    def __init__(
        self,
        capacity: int = 100_000,
        *,
        batch_verifier: RangeVerifier = batch_verify,
        first_failure_verifier: RangeVerifier = batch_verify_first_failure,
    ) -> None:
        self._capacity = capacity
        self._batch_verifier = batch_verifier
        self._first_failure_verifier = first_failure_verifier
        self._verified: dict[bytes, None] = {}

    @staticmethod
    def key(statement: RangeStatement) -> bytes:
        encoded = encode_value(
            (
                statement.bits,
                statement.transcript,
                statement.label,
                tuple(statement.commitments),
                statement.proof,
            )
        )
        return hashlib.sha256(encoded).digest()

    def __len__(self) -> int:
        return len(self._verified)

    def __contains__(self, statement: RangeStatement) -> bool:
        return self.key(statement) in self._verified

    def _remember(self, key: bytes) -> None:
        self._verified[key] = None
        while len(self._verified) > self._capacity:
            del self._verified[next(iter(self._verified))]

    def verify(self, statement: RangeStatement) -> None:
        """``verify_range`` unless already verified; raises ``RangeProofError``."""
        key = self.key(statement)
        if key in self._verified:
            return
        verify_range(statement)
        self._remember(key)

    def batch_verify(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify``'s contract, verifying only the statements not seen before."""
        keys = [self.key(s) for s in statements]
        unseen = [i for i, k in enumerate(keys) if k not in self._verified]
        if not unseen:
            return []
        bad_unseen = self._batch_verifier([statements[i] for i in unseen])
        bad = sorted(unseen[j] for j in bad_unseen)
        bad_set = set(bad)
        for i in unseen:
            if i not in bad_set:
                self._remember(keys[i])
        return bad

    def batch_verify_first_failure(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify_first_failure``'s contract (``[]`` or ``[lowest bad index]``),
        verifying only the statements not seen before: the block path, which stops at the
        first bad proof. The statements are remembered only when all hold."""
        keys = [self.key(s) for s in statements]
        unseen = [i for i, k in enumerate(keys) if k not in self._verified]
        if not unseen:
            return []
        bad_unseen = self._first_failure_verifier([statements[i] for i in unseen])
        if bad_unseen:
            return [unseen[min(bad_unseen)]]
        for i in unseen:
            self._remember(keys[i])
        return []


@dataclass(frozen=True, slots=True)
class BlockResult:
    """What a valid block does, ready for ``Store.commit_block``."""

    block_hash: bytes
    delta: StateDelta
    state_root: bytes
    receipts: tuple[Receipt, ...]

    @property
    def tx_ids(self) -> tuple[bytes, ...]:
        return tuple(r.tx_id for r in self.receipts)

    def owner_index_changes(self) -> list[tuple[bytes, bytes, bool]]:
        """(owner, output id, added) in tx order, for the store's outputs-by-owner index."""
        changes: list[tuple[bytes, bytes, bool]] = []
        for receipt in self.receipts:
            changes.extend((owner, oid, False) for oid, owner in receipt.spent)
            changes.extend((owner, oid, True) for oid, owner in receipt.created)
        return changes


def chain_tip(state: ChainState) -> ChainTip:
    """The tip a new block must extend (height 0 is the genesis, hash = chain id)."""
    tip_hash = state.tip_hash()
    clock = get_clock(state)
    if tip_hash is None or clock is None:
        raise LookupError("the store holds no genesis: call commit_genesis first")
    return ChainTip(state.height(), tip_hash, clock.timestamp_ms)


def commit_genesis(store: Store, genesis: Genesis) -> bytes:
    """Commit height 0: the genesis record as the block, its state, the chain id as hash."""
    return store.commit_block(
        0, genesis.chain_id, genesis.encode(), b"", genesis_delta(genesis), ()
    )


@dataclass(slots=True)
class _Pending:
    view: StateView
    receipts: list[Receipt]
    statements: list[RangeStatement]
    statement_tx: list[int]
    seen: set[bytes]


def _apply_one(
    state: ChainState,
    pending: _Pending,
    dtx: DecodedTx,
    genesis: Genesis,
    index: int,
    *,
    isolate: bool,
) -> None:
    """Check and apply one tx onto ``pending``. With ``isolate``, a rejected tx leaves
    ``pending`` untouched (a child view is merged on success); without it (``apply_block``,
    where any rejection discards the whole block) the writes go straight in."""
    chain_id = genesis.chain_id
    if dtx.tx_id in pending.seen or state.tx_location(dtx.tx_id) is not None:
        raise TxRejected(Reason.DUPLICATE_TX, "tx already in this block or committed")
    check_stateless(dtx, chain_id, max_tx_bytes=genesis.params.max_tx_bytes)
    if isolate:
        child = pending.view.child()
        receipt = apply_tx(child, dtx)
        pending.view.merge(child.delta())
    else:
        receipt = apply_tx(pending.view, dtx)
    pending.seen.add(dtx.tx_id)
    pending.receipts.append(receipt)
    statement = range_statement(dtx)
    if statement is not None:
        pending.statements.append(statement)
        pending.statement_tx.append(index)


def _decode_block_tx(tx: Tx, genesis: Genesis) -> DecodedTx:
    size = encoded_size(tx)
    if size > genesis.params.max_tx_bytes:
        raise TxRejected(Reason.TOO_LARGE, f"{size} bytes > {genesis.params.max_tx_bytes}")
    return decode_envelope(tx, genesis.chain_id, size_bytes=size)


def _finish(pending: _Pending, header: BlockHeader) -> StateDelta:
    pending.view.put(
        state_key(NS_META, META_CLOCK), ClockRecord(header.height, header.timestamp_ms).encode()
    )
    return pending.view.delta()


def apply_block(
    state: ChainState,
    block: Block,
    genesis: Genesis,
    *,
    range_verifier: RangeVerifier = batch_verify_first_failure,
) -> BlockResult:
    """Check ``block`` against ``state`` and return its effects, or raise ``BlockRejected``.

    Nothing is written: commit ``result.delta`` with ``Store.commit_block``
    (``commit_applied`` does it). ``range_verifier`` is called once with every
    range statement of the block (not at all if it has none) and only its lowest bad index
    is used, so the default stops at the first bad proof; a node may pass one that skips
    statements its mempool already verified (``proof_cache.batch_verify_first_failure``).
    """
    header = block.header
    check_header(header, chain_tip(state), genesis, block.txs)
    pending = _Pending(StateView(state), [], [], [], set())
    for index, tx in enumerate(block.txs):
        try:
            dtx = _decode_block_tx(tx, genesis)
            _apply_one(state, pending, dtx, genesis, index, isolate=False)
        except TxRejected as exc:
            raise BlockRejected(exc.reason, exc.detail, index=index) from None
    bad = range_verifier(pending.statements) if pending.statements else []
    if bad:
        index = pending.statement_tx[min(bad)]
        raise BlockRejected(Reason.BAD_RANGE_PROOF, "batch verification", index=index)
    delta = _finish(pending, header)
    root = state.preview_state_root(delta)
    if root != header.state_root:
        raise BlockRejected(Reason.BAD_STATE_ROOT, "state root after the block differs")
    return BlockResult(block_hash(header, genesis.chain_id), delta, root, tuple(pending.receipts))


def commit_applied(store: Store, block: Block, result: BlockResult, certificate: bytes) -> bytes:
    """Persist a block checked by ``apply_block`` in one atomic store batch."""
    return store.commit_block(
        block.header.height,
        result.block_hash,
        block.encode(),
        certificate,
        result.delta,
        result.tx_ids,
        result.owner_index_changes(),
    )


@dataclass(frozen=True, slots=True)
class Proposal:
    block: Block
    result: BlockResult
    rejected: tuple[tuple[bytes, TxRejected], ...]
    """(tx bytes, why) for every invalid candidate, in candidate order. Valid candidates
    beyond ``max_block_txs``, or beyond ``MAX_BLOCK_BYTES`` of block, are neither in the
    block nor here; a tx too big for any block is here as ``TOO_LARGE``."""


def propose_block(
    state: ChainState,
    genesis: Genesis,
    candidates: Sequence[bytes],
    *,
    view: int,
    timestamp_ms: int,
) -> Proposal:
    """Build the next block from candidate tx bytes, leaving out the invalid ones."""
    tip = chain_tip(state)
    limit = genesis.params.max_block_txs
    bad_proofs: dict[int, TxRejected] = {}
    while True:
        # Every pass re-runs all candidates but the known bad proofs: dropping a tx can
        # make a later one invalid (it spent the dropped tx's output) or valid again
        # (it spent the same input).
        pending = _Pending(StateView(state), [], [], [], set())
        kept: list[Tx] = []
        kept_index: list[int] = []
        rejected: dict[int, TxRejected] = dict(bad_proofs)
        block_bytes = BLOCK_OVERHEAD_BYTES
        for index, raw in enumerate(candidates):
            if index in bad_proofs:
                continue
            if len(raw) > MAX_BLOCK_BYTES - BLOCK_OVERHEAD_BYTES:
                rejected[index] = TxRejected(Reason.TOO_LARGE, "larger than any block")
                continue
            if len(kept) >= limit or block_bytes + len(raw) > MAX_BLOCK_BYTES:
                break  # left for a later block, neither kept nor rejected
            try:
                dtx = decode_tx(raw, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes)
                _apply_one(state, pending, dtx, genesis, len(kept), isolate=True)
            except TxRejected as exc:
                rejected[index] = exc
                continue
            kept.append(dtx.tx)
            kept_index.append(index)
            block_bytes += dtx.size_bytes
        bad = batch_verify(pending.statements) if pending.statements else []
        if not bad:
            break
        for i in bad:
            candidate = kept_index[pending.statement_tx[i]]
            bad_proofs[candidate] = TxRejected(Reason.BAD_RANGE_PROOF, "range proof")
    header = BlockHeader(
        version=BLOCK_VERSION,
        height=tip.height + 1,
        prev_hash=tip.block_hash,
        tx_root=tx_root(kept),
        state_root=bytes(32),
        proposer=primary_for_view(genesis, view),
        view=view,
        timestamp_ms=max(timestamp_ms, tip.timestamp_ms),
    )
    delta = _finish(pending, header)
    root = state.preview_state_root(delta)
    header = BlockHeader(
        header.version,
        header.height,
        header.prev_hash,
        header.tx_root,
        root,
        header.proposer,
        header.view,
        header.timestamp_ms,
    )
    block = Block(header, tuple(kept))
    result = BlockResult(block_hash(header, genesis.chain_id), delta, root, tuple(pending.receipts))
    ordered = tuple((candidates[i], rejected[i]) for i in sorted(rejected))
    return Proposal(block, result, ordered)


def admit_tx(
    state: ChainState,
    tx_bytes: bytes,
    genesis: Genesis,
    *,
    pending: StateView | None = None,
    proof_cache: ProofCache | None = None,
) -> tuple[DecodedTx, Receipt]:
    """Mempool admission: every check of one tx against the current state, proof included.

    With ``pending`` (the mempool's view of not-yet-committed txs), the tx is
    checked on top of it and its writes are merged into it on success. With
    ``proof_cache``, a verified range proof is remembered so that the block that
    carries the tx (``apply_block(..., range_verifier=proof_cache.batch_verify_first_failure)``)
    does not verify it again. Raises ``TxRejected``.
    """
    dtx = decode_tx(tx_bytes, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes)
    if state.tx_location(dtx.tx_id) is not None:
        raise TxRejected(Reason.DUPLICATE_TX, "tx already committed")
    check_stateless(dtx, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes)
    base = pending if pending is not None else StateView(state)
    child = base.child()
    receipt = apply_tx(child, dtx)
    statement = range_statement(dtx)
    if statement is not None:
        try:
            if proof_cache is not None:
                proof_cache.verify(statement)
            else:
                verify_range(statement)
        except RangeProofError as exc:
            raise TxRejected(Reason.BAD_RANGE_PROOF, f"{exc.reason}") from None
    if pending is not None:
        pending.merge(child.delta())
    return dtx, receipt
