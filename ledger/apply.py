"""``apply_block``: the executable spec of a block.

Order of checks (the first failure decides the reason, so every node rejects a
bad block with the same code):

1. header: version, height, prev hash, proposer (primary of the view),
   timestamp not before the parent's, tx count, tx root (``ledger.block``);
2. for each tx, in block order:
   a. decode (``MALFORMED`` / ``UNKNOWN_KIND``), size (``TOO_LARGE``),
   b. duplicate id, in the block or already committed (``DUPLICATE_TX``),
   c. stateless checks (``ledger.rules.check_stateless``: structure, points,
      signatures, issue balance), range statement collected, not verified,
   d. stateful checks and writes into the block's pending state
      (``ledger.rules.apply_tx``): a later tx sees an earlier tx's outputs and
      spends, so spending an output created earlier in the block is valid and
      spending one twice in the block is ``DOUBLE_SPEND`` at the second spend;
3. every range statement of the block (a tx's output proof, and those a loan tx's
   rules derive from the state, ``Receipt.range_statements``) in ONE batch verification
   that stops at the
   first bad proof (``batch_verify_first_failure``: a block full of bad proofs
   costs about as much as one bad proof); that lowest bad index gives
   ``BAD_RANGE_PROOF`` at that tx;
4. the clock record, then the state root after the block must equal the
   header's (``BAD_STATE_ROOT``).

Range proofs are last because they are by far the most expensive check and a
block is all-or-nothing: a block that fails anything cheaper never pays for
them. The result is deterministic either way.

The primary's side, turning an ordered batch into a block, is
``ledger.execute.execute_batch``; mempool admission is ``ledger.mempool``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.batch import BlockMetadata, RejectedRequest
from ledger.block import Block, BlockHeader, block_hash, check_header
from ledger.chain import ChainState, chain_tip
from ledger.genesis import Genesis
from ledger.proof_cache import RangeVerifier
from ledger.reasons import BlockRejected, Reason, TxRejected
from ledger.rules import (
    META_CLOCK,
    ClockRecord,
    Receipt,
    apply_tx,
    check_stateless,
    tx_statements,
)
from ledger.state import NS_META, StateDelta, StateView, state_key
from ledger.store import BlockWrite, Store
from ledger.tx import DecodedTx, Tx, decode_envelope, encoded_size
from privacy.rangeproof import RangeStatement, batch_verify_first_failure


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

    def owner_index_changes(self) -> tuple[tuple[bytes, bytes, bool], ...]:
        """(owner, output id, added) in tx order, for the store's outputs-by-owner index."""
        changes: list[tuple[bytes, bytes, bool]] = []
        for receipt in self.receipts:
            changes.extend((owner, oid, False) for oid, owner in receipt.spent)
            changes.extend((owner, oid, True) for oid, owner in receipt.created)
        return tuple(changes)


def write_clock(view: StateView, header: BlockHeader) -> StateDelta:
    """Record the block's (height, timestamp) and return the block's whole delta."""
    view.put(
        state_key(NS_META, META_CLOCK), ClockRecord(header.height, header.timestamp_ms).encode()
    )
    return view.delta()


def decode_block_tx(tx: Tx, genesis: Genesis) -> DecodedTx:
    """Size, then body decoding, of a tx that arrived inside a decoded block."""
    size = encoded_size(tx)
    if size > genesis.params.max_tx_bytes:
        raise TxRejected(Reason.TOO_LARGE, f"{size} bytes > {genesis.params.max_tx_bytes}")
    return decode_envelope(tx, genesis.chain_id, size_bytes=size)


def apply_block(
    state: ChainState,
    block: Block,
    genesis: Genesis,
    *,
    range_verifier: RangeVerifier = batch_verify_first_failure,
) -> BlockResult:
    """Check ``block`` against ``state`` and return its effects, or raise ``BlockRejected``.

    Nothing is written: commit with ``commit_applied``. ``range_verifier`` is
    called once with every range statement of the block (not at all if it has
    none) and only its lowest bad index counts; a node may pass one that skips
    statements its mempool already verified
    (``ProofCache.batch_verify_first_failure``).
    """
    header = block.header
    check_header(header, chain_tip(state), genesis, block.txs)
    view = StateView(state)
    receipts: list[Receipt] = []
    statements: list[RangeStatement] = []
    statement_tx: list[int] = []
    seen: set[bytes] = set()
    for index, tx in enumerate(block.txs):
        try:
            dtx = decode_block_tx(tx, genesis)
            if dtx.tx_id in seen or state.tx_location(dtx.tx_id) is not None:
                raise TxRejected(Reason.DUPLICATE_TX, "tx already in this block or committed")
            check_stateless(dtx, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes)
            # Straight into the block's view: any rejection discards the whole block.
            receipt = apply_tx(view, dtx)
        except TxRejected as exc:
            raise BlockRejected(exc.reason, exc.detail, index=index) from None
        receipts.append(receipt)
        seen.add(dtx.tx_id)
        for statement in tx_statements(dtx, receipt):
            statements.append(statement)
            statement_tx.append(index)
    bad = range_verifier(statements) if statements else []
    if bad:
        index = statement_tx[min(bad)]
        raise BlockRejected(Reason.BAD_RANGE_PROOF, "batch verification", index=index)
    delta = write_clock(view, header)
    root = state.preview_state_root(delta)
    if root != header.state_root:
        raise BlockRejected(Reason.BAD_STATE_ROOT, "state root after the block differs")
    return BlockResult(block_hash(header, genesis.chain_id), delta, root, tuple(receipts))


def commit_applied(
    store: Store,
    block: Block,
    result: BlockResult,
    *,
    certificate: bytes,
    metadata: BlockMetadata,
    rejected: tuple[RejectedRequest, ...] = (),
) -> bytes:
    """Persist a block checked by ``apply_block``, with what consensus ordered beside it
    (certificate, metadata, the batch's rejected requests), in one atomic store batch."""
    return store.commit_block(
        BlockWrite(
            height=block.header.height,
            block_hash=result.block_hash,
            block_bytes=block.encode(),
            certificate_bytes=certificate,
            metadata=metadata,
            rejected=rejected,
            delta=result.delta,
            tx_ids=result.tx_ids,
            owner_index_changes=result.owner_index_changes(),
        )
    )
