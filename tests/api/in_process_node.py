"""``InProcessNode``: a small, real ``NodeServices`` for API tests.

Not a fake: it admits txs through the ledger's two-phase ``PendingTxs`` (with
a ``ProofCache``) over a real store, and ``commit_pending`` turns the pending
txs into the next block with ``execute_batch``, a 3-of-4 commit certificate
over consensus's proposal digest, and ``commit_executed``, exactly as the
runtime does after consensus. Events go through ``node.event_hub``. What it
leaves out is consensus itself (one process decides the order) and the
network (peers are flags a test sets).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

from ledger.batch import BlockMetadata
from ledger.execute import commit_executed, execute_batch
from ledger.genesis import Genesis
from ledger.mempool import PendingTxs, admit_decoded
from ledger.proof_cache import ProofCache
from ledger.reasons import TxRejected
from ledger.store import Store
from ledger.tx import decode_tx
from node.event_hub import EventHub, Subscription
from node.metrics import NodeMetrics
from node.services import (
    BUSY_MEMPOOL_FULL,
    BUSY_RATE_LIMITED,
    NODE_STOPPED,
    Accepted,
    BlockCommitted,
    Busy,
    CatchUp,
    Committed,
    Duplicate,
    NodeStatus,
    PeerStatus,
    Pending,
    Rejected,
    SubmitOutcome,
    TxRejectedStatus,
    TxStatus,
    TxStatusChanged,
    Unknown,
)
from tests.integration.test_block_certificate_path import certify
from tests.spec.ledger_world import GENESIS_TIME_MS, World

LOG = logging.getLogger("veil.node")


class InProcessNode:
    def __init__(
        self,
        world: World,
        store: Store,
        *,
        mempool_capacity_txs: int = 1_000,
        max_pending_per_signer: int = 100,
    ) -> None:
        self.world = world
        self._store = store
        self._metrics = NodeMetrics()
        self._metrics.set_msm_backend("python")
        self.proof_cache = ProofCache()
        self.pending = PendingTxs(store, world.genesis)
        self.pending_txs: dict[bytes, bytes] = {}
        self.rejected: dict[bytes, TxRejectedStatus] = {}
        self.hub = EventHub()
        self.mempool_capacity_txs = mempool_capacity_txs
        self.max_pending_per_signer = max_pending_per_signer
        self._pending_by_signer: dict[bytes, int] = {}
        self.connected_peers = 3
        self.stopped = False
        self.wal_latched = False
        self.catching_up: CatchUp | None = None
        self.last_commit_ms: int | None = None
        self._committed = asyncio.Event()

    # --- NodeServices -----------------------------------------------------------------

    @property
    def genesis(self) -> Genesis:
        return self.world.genesis

    @property
    def store(self) -> Store:
        return self._store

    @property
    def metrics(self) -> NodeMetrics:
        return self._metrics

    def status(self) -> NodeStatus:
        validators = self.genesis.validators
        peers = tuple(
            PeerStatus(index, v.public_key, index <= self.connected_peers)
            for index, v in enumerate(validators)
            if index != 0
        )
        return NodeStatus(
            height=self._store.height(),
            view=0,
            primary=0,
            state_root=self._store.state_root(),
            last_commit_ms=self.last_commit_ms,
            peers=peers,
            mempool_txs=len(self.pending_txs),
            mempool_bytes=sum(len(raw) for raw in self.pending_txs.values()),
            catching_up=self.catching_up,
            stopped=self.stopped,
            stop_reason="WAL write failed" if self.wal_latched else None,
            wal_latched=self.wal_latched,
            msm_backend="python",
        )

    def check_ahead(self, txs: Sequence[bytes]) -> None:
        """The services' hint before a batch; this node checks each tx's signature
        as it admits it, so the answers are the same without it."""

    async def submit_many(self, txs: Sequence[bytes]) -> list[SubmitOutcome | Exception]:
        """A task per tx through ``submit``, started in order: the subclasses that
        stand for a proof window or a bug in admission override ``submit`` alone."""
        gathered = await asyncio.gather(*(self.submit(tx) for tx in txs), return_exceptions=True)
        outcomes: list[SubmitOutcome | Exception] = []
        for outcome in gathered:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation is not an item's result
            outcomes.append(outcome)
        return outcomes

    async def submit(self, tx_bytes: bytes) -> SubmitOutcome:
        if self.stopped:
            return Busy(NODE_STOPPED, 5_000)
        genesis = self.genesis
        try:
            dtx = decode_tx(tx_bytes, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes)
        except TxRejected as exc:
            self._metrics.txs_rejected.labels(reason=exc.reason.value).inc()
            LOG.info("tx refused", extra={"reason": exc.reason.value})
            return Rejected(None, exc.reason.value, exc.detail or exc.reason.value)
        if dtx.tx_id in self.pending or self._store.tx_location(dtx.tx_id) is not None:
            return Duplicate(dtx.tx_id)
        if len(self.pending_txs) >= self.mempool_capacity_txs:
            return Busy(BUSY_MEMPOOL_FULL, 1_000)
        if self._pending_by_signer.get(dtx.signer, 0) >= self.max_pending_per_signer:
            return Busy(BUSY_RATE_LIMITED, 1_500)  # Retry-After: 2
        try:
            admit_decoded(self.pending, dtx, proof_cache=self.proof_cache)
        except TxRejected as exc:
            self._metrics.txs_rejected.labels(reason=exc.reason.value).inc()
            status = TxRejectedStatus(dtx.tx_id, exc.reason.value, None)
            self.rejected[dtx.tx_id] = status
            LOG.info("tx refused", extra={"tx_id": dtx.tx_id.hex(), "reason": exc.reason.value})
            self.hub.publish(TxStatusChanged(status))
            return Rejected(dtx.tx_id, exc.reason.value, exc.detail or exc.reason.value)
        self.pending_txs[dtx.tx_id] = tx_bytes
        self._pending_by_signer[dtx.signer] = self._pending_by_signer.get(dtx.signer, 0) + 1
        self._metrics.txs_admitted.inc()
        self._metrics.mempool_txs.set(len(self.pending_txs))
        self.hub.publish(TxStatusChanged(Pending(dtx.tx_id)))
        return Accepted(dtx.tx_id)

    def tx_status(self, tx_id: bytes) -> TxStatus:
        location = self._store.tx_location(tx_id)
        if location is not None:
            block_hash = self._store.block_hash_at(location.height) or b""
            return Committed(tx_id, location.height, location.index_in_block, block_hash)
        if tx_id in self.pending_txs:
            return Pending(tx_id)
        return self.rejected.get(tx_id) or Unknown(tx_id)

    async def wait_for_commit(self, tx_id: bytes, timeout_s: float) -> TxStatus:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            status = self.tx_status(tx_id)
            remaining = deadline - loop.time()
            if not isinstance(status, Pending) or remaining <= 0:
                return status
            committed = self._committed
            try:
                await asyncio.wait_for(committed.wait(), remaining)
            except TimeoutError:
                return self.tx_status(tx_id)

    def subscribe(self, max_queue: int) -> Subscription:
        return self.hub.subscribe(max_queue)

    # --- what consensus would do -------------------------------------------------------

    def commit_pending(self, extra_payloads: tuple[bytes, ...] = ()) -> int:
        """Execute the pending txs (and ``extra_payloads``, e.g. a byzantine primary's)
        as the next batch, certify it, commit it; publish the events. The new height."""
        store, genesis = self._store, self.genesis
        payloads = [*self.pending_txs.values(), *extra_payloads]
        height = store.height() + 1
        metadata = BlockMetadata(GENESIS_TIME_MS + height, 0)
        executed = execute_batch(
            store, genesis, height, payloads, metadata, range_verifier=self.proof_cache.batch_verify
        )
        certificate = certify(self.world, payloads, metadata, height, signers=3)
        commit_executed(store, executed, certificate)
        block_hash = store.block_hash_at(height) or b""
        self.last_commit_ms = metadata.timestamp_ms
        for rejected in executed.rejected:
            tx_id = executed_tx_id(rejected.payload, genesis)
            if tx_id is not None:
                status = TxRejectedStatus(tx_id, rejected.reason_code, height)
                self.rejected[tx_id] = status
                self.hub.publish(TxStatusChanged(status))
        self.hub.publish(
            BlockCommitted(
                height,
                block_hash,
                store.state_root(),
                executed.result.tx_ids,
                metadata.timestamp_ms,
            )
        )
        for index, tx_id in enumerate(executed.result.tx_ids):
            self.hub.publish(TxStatusChanged(Committed(tx_id, height, index, block_hash)))
        self.pending = PendingTxs(store, genesis)
        self.pending_txs = {}
        self._pending_by_signer = {}
        self._metrics.height.set(height)
        self._metrics.batch_size_txs.observe(len(payloads))
        self._metrics.mempool_txs.set(0)
        LOG.info("block committed", extra={"height": height, "txs": len(executed.result.tx_ids)})
        self._committed.set()
        self._committed = asyncio.Event()
        return height


def executed_tx_id(payload: bytes, genesis: Genesis) -> bytes | None:
    try:
        return decode_tx(payload, genesis.chain_id, max_tx_bytes=genesis.params.max_tx_bytes).tx_id
    except TxRejected:
        return None


class CertificateCountingNode(InProcessNode):
    """Counts the certificate reads the API makes through ``services.store``."""

    certificate_reads = 0

    @property
    def store(self) -> Store:
        node = self
        inner = super().store

        class Counting:
            def __getattr__(self, name: str) -> object:
                return getattr(inner, name)

            def certificate_at(self, height: int) -> bytes | None:
                node.certificate_reads += 1
                return inner.certificate_at(height)

        return cast(Store, Counting())
