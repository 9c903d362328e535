"""``execute_batch``: the block a consensus batch becomes, and the requests it rejects.

A consensus request is one tx and its id is the tx id (``request_id_of``).
The batch ordered at seq ``s`` is the block at height ``s``; a null batch is
an empty block. ``execute_batch`` is total and deterministic: every replica
turns the same (state, batch, metadata) into the same block and the same
rejected list, and it never raises on request bytes.

**What it means.** The result is exactly what this sequential rule gives:
for each request in batch order, check it against the state left by the
requests accepted before it, in this order, the first failure being its
reason:

1. decode and size (``MALFORMED``, ``UNKNOWN_KIND``, ``TOO_LARGE``);
2. its id is not earlier in the batch, nor committed (``DUPLICATE_TX``: a
   request re-issued after a view change lands here);
3. stateless checks (``rules.check_stateless``);
4. stateful checks (``rules.apply_tx``): conflicts inside the batch, such as
   a second spend of an input, are ``DOUBLE_SPEND`` at the second spend;
5. room in the block: ``max_block_txs`` txs (``TOO_MANY_TXS``) and
   ``MAX_BLOCK_BYTES`` of block (``BLOCK_FULL``);
6. its range proof (``BAD_RANGE_PROOF``).

Accepted txs go into the block in batch order; every other request is
returned with its reason. A valid tx is never dropped.

**How, cheaply.** Range proofs are verified in batches, not one by one: a pass
runs steps 1-5 over the whole batch (skipping the proofs already known bad),
then one ``range_verifier`` call checks every included proof not yet
verified. With no bad proof (the honest case) that is the whole cost: one pass
and one batch verification. When the verifier names bad proofs, their txs are
marked bad and the pass is re-run, because leaving a tx out can change later
ones (a tx spending its output becomes ``UNKNOWN_INPUT``; a rival spending the
same input becomes valid). Each re-run only verifies proofs it has not
verified before, so every proof is verified once; the passes re-use each
request's decoding and stateless checks (signatures, excess proofs) and redo
only the stateful checks. A batch with ``k`` bad proofs needs at most ``k + 1``
passes (in practice one more: the bad proofs of one pass are all found at
once) and the verifier's bisection to name them
(``privacy.rangeproof.batch_verify``: about ``2k·log2(m/k)`` sub-batch checks
for ``m`` proofs). A byzantine primary that fills a batch with bad proofs thus
costs every replica about ``log2(m)`` times one good batch, bounded by the
batch size limits; the node's ``ProofCache.batch_verify`` as the verifier
skips proofs its mempool verified already.

The tx reasons are the same whatever the verifier's batching, because a tx
whose proof is bad is only reported ``BAD_RANGE_PROOF`` if it passes steps 1-5
in the final pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ledger.apply import BlockResult, decode_block_tx, write_clock
from ledger.batch import BlockMetadata, RejectedRequest
from ledger.block import (
    BLOCK_OVERHEAD_BYTES,
    BLOCK_VERSION,
    MAX_BLOCK_BYTES,
    Block,
    BlockHeader,
    block_hash,
    encode_block_of_encodings,
    primary_for_view,
    tx_root_of_encodings,
)
from ledger.chain import ChainState, chain_tip
from ledger.codec import DecodeError
from ledger.genesis import Genesis
from ledger.invariants import invariant
from ledger.proof_cache import RangeVerifier
from ledger.reasons import Reason, TxRejected
from ledger.recorded_apply import AppliedTx
from ledger.rules import Receipt, apply_tx, check_stateless, range_statement
from ledger.state import StateDelta, StateView
from ledger.store import BlockWrite, Store
from ledger.tx import DecodedTx, Tx
from privacy.rangeproof import RangeStatement, batch_verify

REQUEST_TAG: Final = b"veil/request/v1"
"""Domain of a consensus request id: the hash of the whole payload under it."""


def request_id_of(payload: bytes, chain_id: bytes) -> bytes:
    """The consensus request id of ``payload``: SHA-256 over a tag, the chain id and
    every byte of it. Never raises.

    Not the tx id: the tx id covers kind and body but not the signature or
    witness, so a copy of a pending tx with a forged signature would share it.
    A byzantine primary could order that copy first; the ledger rejects it, and
    consensus, which deduplicates by request id, would then drop the honest copy
    as already executed: censorship. Over the whole payload the two copies are
    different requests, both are ordered, and the ledger keeps exactly one tx
    per tx id (``DUPLICATE_TX`` for the other).
    """
    data = bytes(payload) if isinstance(payload, (bytes, bytearray, memoryview)) else b""
    return hashlib.sha256(REQUEST_TAG + chain_id + data).digest()


@dataclass(frozen=True, slots=True)
class ExecutedBatch:
    """The block a batch became, its effects, and the requests it left out (in batch order)."""

    block: Block
    result: BlockResult
    metadata: BlockMetadata
    rejected: tuple[RejectedRequest, ...]
    encoded_txs: tuple[bytes, ...] = field(repr=False)
    """The block's txs as the request payloads held them (canonical), so the block's
    bytes need not encode every tx again."""
    prior_state: Mapping[bytes, bytes | None] = field(default_factory=dict, repr=False)
    """The committed values execution read (``_PriorReads``), for the undo log."""

    def block_write(self, certificate: bytes) -> BlockWrite:
        """What ``Store.commit_block`` writes for this batch and its commit certificate."""
        return BlockWrite(
            height=self.block.header.height,
            block_hash=self.result.block_hash,
            block_bytes=encode_block_of_encodings(self.block.header, self.encoded_txs),
            certificate_bytes=certificate,
            metadata=self.metadata,
            rejected=self.rejected,
            delta=self.result.delta,
            tx_ids=self.result.tx_ids,
            owner_index_changes=self.result.owner_index_changes(),
            prior_state=self.prior_state,
        )


def commit_executed(store: Store, executed: ExecutedBatch, certificate: bytes) -> bytes:
    """Persist an executed batch with its certificate in one synced write; the new root."""
    return store.commit_block(executed.block_write(certificate))


class _PriorReads:
    """The committed state as the block found it, each key read from the store once.

    Why: a block's txs read the same keys again (each attest of a bank its
    member record), each a LevelDB read otherwise, and the store's undo log
    needs the old value of every key the block changes, which execution has
    mostly read already (``BlockWrite.prior_state``). Every read is of the one
    committed height the block extends, so a value kept is a value read."""

    __slots__ = ("_state", "values")

    def __init__(self, state: ChainState) -> None:
        self._state = state
        self.values: dict[bytes, bytes | None] = {}

    def get_state(self, key: bytes) -> bytes | None:
        values = self.values
        if key in values:
            return values[key]
        value = values[key] = self._state.get_state(key)
        return value

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self._state.iter_state(prefix)


@dataclass(slots=True)
class _Screened:
    """One request's checks that do not depend on the state, each done at most once."""

    payload: bytes
    decoded: DecodedTx | None = None
    decode_error: TxRejected | None = None
    stateless_error: TxRejected | None = None
    stateless_done: bool = False
    statement: RangeStatement | None = None
    applied: AppliedTx | None = None
    """This node's earlier ``apply_tx`` of these bytes, used where its reads hold."""


@dataclass(slots=True)
class _Pass:
    view: StateView
    receipts: list[Receipt] = field(default_factory=list)
    included: list[int] = field(default_factory=list)
    txs: list[Tx] = field(default_factory=list)
    encoded_txs: list[bytes] = field(default_factory=list)
    """Each included tx's request payload: its canonical encoding (decoding is strict)."""
    rejected: dict[int, TxRejected] = field(default_factory=dict)


def _screen(payload: bytes, genesis: Genesis) -> _Screened:
    screened = _Screened(payload)
    try:
        if not isinstance(payload, bytes):
            raise TxRejected(Reason.MALFORMED, "a request is bytes")
        if len(payload) > genesis.params.max_tx_bytes:
            raise TxRejected(
                Reason.TOO_LARGE, f"{len(payload)} bytes > {genesis.params.max_tx_bytes}"
            )
        try:
            tx = Tx.decode(payload, max_bytes=genesis.params.max_tx_bytes)
        except DecodeError as exc:
            raise TxRejected(Reason.MALFORMED, f"envelope: {exc}") from None
        screened.decoded = decode_block_tx(tx, genesis)
    except TxRejected as exc:
        screened.decode_error = exc
    return screened


def _screen_known(
    payload: bytes,
    genesis: Genesis,
    known: Callable[[bytes], DecodedTx | None] | None,
    recorded: Callable[[bytes], AppliedTx | None] | None,
) -> _Screened:
    """``_screen``, or the tx ``known`` decoded and checked from these bytes already
    (with the ``AppliedTx`` ``recorded`` for them, if any)."""
    decoded = known(payload) if known is not None and isinstance(payload, bytes) else None
    if decoded is None:
        return _screen(payload, genesis)
    screened = _Screened(payload, decoded=decoded, stateless_done=True)
    screened.statement = range_statement(decoded)
    if recorded is not None:
        screened.applied = recorded(payload)
    return screened


def _apply(view: StateView, screened: _Screened, dtx: DecodedTx) -> tuple[Receipt, StateDelta]:
    """``apply_tx`` on a child of ``view``: its receipt and writes (``TxRejected``).
    An earlier result whose reads hold in ``view`` is that very outcome, and one
    where only asset totals moved is it rebased (``ledger.recorded_apply``), so
    its writes are taken as they are."""
    applied = screened.applied
    if applied is not None:
        current = applied.on(view)
        if current is not None:
            return current.receipt, current.delta
    child = view.child()
    receipt = apply_tx(child, dtx)
    return receipt, child.delta()


def output_statements(payloads: Sequence[bytes], genesis: Genesis) -> list[RangeStatement]:
    """The output-proof statement of every payload that decodes, in order: what a
    node can verify before it executes a batch (catch-up verifies fetched blocks'
    proofs ahead, in large batches). Stateless: the statements loan rules derive
    from the state are not among them, and execution still checks everything."""
    statements: list[RangeStatement] = []
    for payload in payloads:
        decoded = _screen(payload, genesis).decoded
        statement = range_statement(decoded) if decoded is not None else None
        if statement is not None:
            statements.append(statement)
    return statements


def _stateless_error(screened: _Screened, genesis: Genesis) -> TxRejected | None:
    if not screened.stateless_done and screened.decoded is not None:
        try:
            check_stateless(
                screened.decoded, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes
            )
            screened.statement = range_statement(screened.decoded)
        except TxRejected as exc:
            screened.stateless_error = exc
        screened.stateless_done = True
    return screened.stateless_error


def _run_pass(
    state: ChainState,
    prior: _PriorReads,
    genesis: Genesis,
    requests: list[_Screened],
    bad_proofs: set[int],
) -> _Pass:
    """Steps 1-5 of the module docstring over the batch, leaving out ``bad_proofs``."""
    run = _Pass(StateView(prior))
    seen: set[bytes] = set()
    block_bytes = BLOCK_OVERHEAD_BYTES
    for index, screened in enumerate(requests):
        dtx = screened.decoded
        if screened.decode_error is not None or dtx is None:
            run.rejected[index] = screened.decode_error or TxRejected(Reason.MALFORMED)
            continue
        if dtx.tx_id in seen or state.tx_location(dtx.tx_id) is not None:
            run.rejected[index] = TxRejected(
                Reason.DUPLICATE_TX, "tx already earlier in the batch or committed"
            )
            continue
        stateless = _stateless_error(screened, genesis)
        if stateless is not None:
            run.rejected[index] = stateless
            continue
        try:
            receipt, delta = _apply(run.view, screened, dtx)
        except TxRejected as exc:
            run.rejected[index] = exc
            continue
        if len(run.included) >= genesis.params.max_block_txs:
            run.rejected[index] = TxRejected(
                Reason.TOO_MANY_TXS, f"the block already holds {len(run.included)} txs"
            )
            continue
        if block_bytes + dtx.size_bytes > MAX_BLOCK_BYTES:
            run.rejected[index] = TxRejected(
                Reason.BLOCK_FULL, f"{dtx.size_bytes} more bytes exceed {MAX_BLOCK_BYTES}"
            )
            continue
        if index in bad_proofs:
            run.rejected[index] = TxRejected(Reason.BAD_RANGE_PROOF, "range proof")
            continue
        run.view.merge(delta)
        seen.add(dtx.tx_id)
        block_bytes += dtx.size_bytes
        run.receipts.append(receipt)
        run.included.append(index)
        run.txs.append(dtx.tx)
        run.encoded_txs.append(screened.payload)
    return run


def _faulty(
    bad: Sequence[int],
    to_verify: Sequence[int],
    statements: Sequence[RangeStatement],
    derived: set[RangeStatement],
) -> set[int]:
    """The txs to leave out for their bad statements.

    A tx's own proof is its fault. A statement derived from the state (a loan's)
    may fail only because an earlier bad tx of this pass changed that state, so
    it counts only when no earlier tx failed; the next pass, without the earlier
    one, judges it again. The lowest failing tx always counts, so passes end.
    """
    failing = sorted({to_verify[j] for j in bad})
    faulty: set[int] = set()
    for j in bad:
        index = to_verify[j]
        if statements[j] not in derived or index == failing[0]:
            faulty.add(index)
    return faulty


def execute_batch(
    state: ChainState,
    genesis: Genesis,
    height: int,
    requests: Sequence[bytes],
    metadata: BlockMetadata,
    *,
    range_verifier: RangeVerifier = batch_verify,
    stateless_checked: Callable[[bytes], DecodedTx | None] | None = None,
    recorded_applies: Callable[[bytes], AppliedTx | None] | None = None,
) -> ExecutedBatch:
    """The block at ``height`` built from the valid txs of ``requests`` in batch order,
    and the rejected requests with their reasons (see the module docstring).

    ``stateless_checked(payload)`` gives the tx these exact bytes decoded to when
    they passed ``rules.check_stateless`` on this node already (the node's
    mempool, ``ledger.stateless_cache``): decoding and step 3 are skipped for
    them, as they would give the same tx and pass; ``None`` means check them.
    ``recorded_applies(payload)`` (asked only for those) gives an earlier
    ``apply_tx`` result of the same bytes with the state values it read: where
    they hold, step 4 takes its receipt and writes instead of running the rules
    again, which is the same outcome (``ledger.recorded_apply``).

    ``height`` must be the tip's height + 1 (a caller's bug otherwise:
    ``InvariantViolation``). The header's proposer is the primary of
    ``metadata.proposed_view``, its view that view, its timestamp
    ``metadata.timestamp_ms`` (or the parent's, if that is later: a block's
    time never goes back).
    """
    tip = chain_tip(state)
    invariant(height == tip.height + 1, f"executing height {height} on tip {tip.height}")
    screened = [
        _screen_known(payload, genesis, stateless_checked, recorded_applies) for payload in requests
    ]
    bad_proofs: set[int] = set()
    # By statement, not by tx: a loan tx's derived statements depend on the txs
    # before it, which can change between passes.
    verified: set[RangeStatement] = set()
    prior = _PriorReads(state)  # one committed height for every pass
    while True:
        run = _run_pass(state, prior, genesis, screened, bad_proofs)
        to_verify: list[int] = []
        statements: list[RangeStatement] = []
        derived: set[RangeStatement] = set()
        for i, receipt in zip(run.included, run.receipts, strict=True):
            own = screened[i].statement
            derived.update(receipt.range_statements)
            for statement in ((own,) if own is not None else ()) + receipt.range_statements:
                if statement not in verified:
                    to_verify.append(i)
                    statements.append(statement)
        bad = range_verifier(statements) if statements else []
        newly_bad = _faulty(bad, to_verify, statements, derived)
        verified.update(
            st for i, st in zip(to_verify, statements, strict=True) if i not in newly_bad
        )
        if not newly_bad:
            break
        bad_proofs |= newly_bad
    header = BlockHeader(
        version=BLOCK_VERSION,
        height=height,
        prev_hash=tip.block_hash,
        tx_root=tx_root_of_encodings(run.encoded_txs),
        state_root=bytes(32),
        proposer=primary_for_view(genesis, metadata.proposed_view),
        view=metadata.proposed_view,
        timestamp_ms=max(metadata.timestamp_ms, tip.timestamp_ms),
    )
    delta = write_clock(run.view, header)
    root = state.preview_state_root(delta)
    header = dataclasses.replace(header, state_root=root)
    block = Block(header, tuple(run.txs))
    result = BlockResult(block_hash(header, genesis.chain_id), delta, root, tuple(run.receipts))
    rejected = tuple(
        RejectedRequest(index, run.rejected[index].reason.value, _payload_bytes(screened[index]))
        for index in sorted(run.rejected)
    )
    return ExecutedBatch(block, result, metadata, rejected, tuple(run.encoded_txs), prior.values)


def _payload_bytes(screened: _Screened) -> bytes:
    payload = screened.payload
    return payload if isinstance(payload, bytes) else b""
