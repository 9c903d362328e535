"""The runtime: drives the consensus core and carries out its actions (asyncio shell).

One ``asyncio.TaskGroup`` runs four tasks:

- the consensus loop: one event queue into ``Replica.step``, with group
  commit: it takes every event queued (up to ``step_group_max_events``),
  steps the core through all of them, syncs all their records in ONE append
  to the write-ahead log (``consensus.action_plan.group_commit``), on the
  serial worker thread, and only then carries out their other actions in
  order, by ONE executor (``_carry_out``, ``assert_never`` as its default).
  So every record is durable before any later send leaves, and events that
  queued up while the loop waited (on a sync or a block's execution) cost
  one fsync and one worker round-trip instead of one each. ``Executed``
  (the follow-up of an ``Execute``) is stepped after the group, before any
  newer event. A failed append latches the WAL and stops the node before
  any of the group's actions: it never sends again (``/healthz`` reports
  it);
- the ticker: ``Tick(now_ms)`` every ``tick_ms`` of the loop clock, stamped
  with the wall clock (``node.config`` is the only place ms become ticks);
- the feeder: woken when the mempool accepts a tx, it gives the core what
  arrived within ``feed_interval_ms`` in one ``ClientBatchReady`` (every
  replica, so backups watch for a primary that censors; the core's primary cuts batches of at most
  ``max_block_txs`` within its watermark window, proposes a shorter one only
  once its oldest tx waited ``batch_cut_ms`` (in ticks), and keeps at most
  ``max_inflight_batches`` of them proposed and not yet executed: what
  arrives meanwhile goes in the next, larger batch);
- the proof batcher: range proofs of txs in admission, collected for up to
  ``proof_batch_wait_ms`` or ``proof_batch_max`` txs, verified as one batch
  by the injected ``ProofVerifier`` (the process pool in production).

Execution (``LedgerApp.execute``: ``execute_batch`` and one synced block
write) runs on the serial worker thread; the loop awaits it, so the core
sees ``Executed`` before its next event. The store is written only there;
the loop reads it only through the ``StoreSnapshot`` the worker takes after
each block and the loop installs (``store``, ``status``, ``tx_status``, the
mempool, catch-up), so one loop callback reads one committed block
(docs/architecture.md, "Threads"). ``RequestStateTransfer`` starts a
catch-up task (``node.catchup``) that fetches certified blocks from the
peers the core named, applies them on the worker thread, checks the state
root against the stable checkpoint, goes on to newer checkpoints and the
newest block peers hold, and answers ``StateTransferCompleted`` at the height it reached; it
and the start-up catch-up share one pipeline (``node.catchup_pipeline``).

WAL compaction: once the log holds ``wal_compact_records`` more records
than after its last compaction (or than nothing, at start), the consensus
loop rewrites it as ``consensus.persistence.live_records`` of its records,
in one synced batch on the worker thread, after the step's sends and
before the next event (``WriteAheadLog.compact``: a crash keeps the old log
or the new one). The live records are what a restart needs: votes above
the stable checkpoint, the highest checkpoint and view records, so the log
stays within the live set plus ``wal_compact_records``.

``Diverged``, f + 1 peers serving one certified block whose header
re-execution does not rebuild (``HeaderDisputes``; one such peer is a peer
fault and the block is fetched from another), a state root that differs
from the stable checkpoint's after catch-up, a WAL
failure (append or compaction) or a failed store write (a full disk:
``StoreIOError``, the store latches) stop the node: the core is fed nothing more, nothing
is sent, and ``status().stopped`` says why. A broken local invariant raises
out of ``run``. Restart: ``Replica.restore`` from the WAL's records and the
store's height, root and recent request ids.

The runtime is the production ``NodeServices`` (``node.services``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, assert_never

from consensus.action_plan import group_commit
from consensus.actions import (
    Action,
    Broadcast,
    Diverged,
    Execute,
    Persist,
    ReportFault,
    RequestStateTransfer,
    Send,
)
from consensus.events import (
    ClientBatchReady,
    Event,
    Executed,
    MessageReceived,
    StateTransferCompleted,
    Tick,
)
from consensus.messages import Batch, Message
from consensus.persistence import Record, live_records
from consensus.replica import Replica
from ledger.block import decode_block
from ledger.execute import output_statements, request_id_of
from ledger.genesis import Genesis
from ledger.identity import SigningIdentity, verify_self_tagged
from ledger.invariants import InvariantViolation
from ledger.proof_cache import ProofCache
from ledger.reasons import Reason
from ledger.stateless_cache import StatelessCache
from ledger.store import Store, StoreIOError, StoreReader, StoreSnapshot
from node.app import BlockApplied, BlockMismatchError, LedgerApp, validate_proposal_for
from node.catchup import (
    CatchUp,
    FetchRequest,
    HeaderDisputes,
    PeerFailures,
    VerifiedBlock,
    certified_block_at,
)
from node.catchup_pipeline import LiveChunks, PeerChunks, PrepareChunk, run_pipelined
from node.config import DEFAULT_BATCH_CUT_MS, replica_config_from_genesis
from node.event_hub import EventHub, Subscription
from node.mempool import (
    PROOF_BATCH_MAX,
    PROOF_BATCH_WAIT_MS,
    Admission,
    Mempool,
    MempoolLimits,
    ProofWanted,
    check_balances,
)
from node.metrics import NodeMetrics
from node.proof_pool import ProofVerifier
from node.rejections import RecentRejections, executed_rejections
from node.serial_worker import SerialWorker
from node.services import (
    NODE_STOPPED,
    Accepted,
    BlockCommitted,
    Busy,
    Committed,
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
from node.services import (
    CatchUp as CatchUpStatus,
)
from node.thread_priority import lower_native_threads
from node.wal import WalError
from privacy.msm import backend_name
from privacy.rangeproof import RangeStatement

log = logging.getLogger("veil.node.runtime")

GOSSIP_FAULT = "invalid_gossip"
GOSSIP_FAULT_REASONS: frozenset[str] = frozenset(
    reason.value
    for reason in (
        Reason.MALFORMED,
        Reason.TOO_LARGE,
        Reason.UNKNOWN_KIND,
        Reason.BAD_SIGNATURE,
        Reason.BAD_RANGE_PROOF,
        Reason.BAD_COMMITMENT,
    )
)
"""Refusals that depend on a tx's bytes alone, never on the state: an honest
validator cannot have admitted such a tx, so its gossip of it is a fault."""
REFUSED_GOSSIP_KEPT = 4096
"""Refused gossip remembered (32-byte digests), oldest forgotten first."""
NATIVE_PRIORITY_EVERY_TICKS = 50
"""Ticks between two looks for new LevelDB threads (5 s at the default tick)."""


class ConsensusLog(Protocol):
    """The write-ahead log as the runtime uses it (``node.wal.WriteAheadLog``)."""

    @property
    def records(self) -> tuple[Record, ...]: ...

    @property
    def latched(self) -> bool: ...

    def __len__(self) -> int: ...

    def append(self, records: tuple[Record, ...]) -> None: ...

    def compact(self, live: Callable[[Sequence[Record]], Sequence[Record]]) -> int:
        """Rewrite the log as ``live(records)`` in one synced batch; records dropped."""
        ...


class PeerLinks(Protocol):
    """The peer transport as the runtime uses it. Sends never block: they queue."""

    def send(self, to: int, message: Message) -> None: ...

    def broadcast(self, message: Message) -> None: ...

    def gossip_tx(self, tx_bytes: bytes) -> None: ...

    def connected(self, peer: int) -> bool: ...

    def quarantine(self, peer: int, reason: str) -> None:
        """``peer`` proved itself faulty (``PeerTransport.quarantine``): refuse it a while."""
        ...

    async def fetch_blocks(
        self, peer: int, first_height: int, last_height: int, max_bytes: int
    ) -> list[bytes]:
        """Encoded ``CertifiedBlock``s from ``first_height`` on (a prefix of the range);
        raises ``OSError``/``TimeoutError`` when the peer cannot answer."""
        ...


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    tick_ms: int = 100
    feed_interval_ms: int = 5
    feed_max_txs: int = 4096
    proof_batch_max: int = PROOF_BATCH_MAX
    proof_batch_wait_ms: int = PROOF_BATCH_WAIT_MS
    max_queued_peer_messages: int = 10_000
    mempool: MempoolLimits = field(default_factory=MempoolLimits)
    catchup_chunk_blocks: int = 64
    catchup_parallel: int = 4
    catchup_max_bytes: int = 64 * 1024 * 1024
    catchup_fetch_timeout_s: float = 10.0
    catchup_proof_batch: int = 128
    """Catch-up verifies fetched proofs ahead of execution in batches of this many."""
    serve_max_blocks: int = 64
    """A peer's ``BlocksRequest`` gets at most this many blocks: its range is clamped
    before anything is read, whatever range it asked for."""
    startup_peer_wait_s: float = 5.0
    idle_probe_s: float = 2.0
    """With no commit for this long, ask the peers for blocks above our height (an
    idle chain sends no commit that would tell a node it missed the last blocks)."""
    wal_compact_records: int = 4096
    """Compact the WAL once it holds this many records more than after its last compaction."""
    max_inflight_batches: int = 4
    """As primary, at most this many proposed batches wait to execute (the core's cap)."""
    batch_cut_ms: int = DEFAULT_BATCH_CUT_MS
    """As primary, a batch short of a full block waits for its oldest tx to be this old
    (the core's ``batch_cut_ticks``, ``node.config``)."""
    step_group_max_events: int = 64
    """Group commit: queued events stepped before their records are synced in one append.
    Bounded because the first event's sends wait for the others' steps (a step may
    verify signatures: tens of µs each)."""
    recent_statuses: int = 100_000
    compaction_nice: int = 10
    """Nice value of the threads Python did not start, LevelDB's compaction (0: left
    at the process's; ``node.thread_priority``)."""
    msm_backend: str = field(default_factory=backend_name)
    """The multiscalar backend proofs are verified with (the proof pool's workers are
    forked from this process, so they use the same one)."""


class Fetched(Enum):
    """What applying one fetched block did."""

    NEW = "new"
    ALREADY_HERE = "already here"  # the core executed it meanwhile
    DISPUTED = "disputed"  # not applied: its header is not what re-execution built
    STOPPED = "stopped"  # the node halted (diverged, or its disk failed): go no further


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A block the worker thread committed, and the store's snapshot taken right after
    it on that thread (so nothing else was committed in between)."""

    applied: BlockApplied
    view: StoreSnapshot


def read_certified_blocks(
    store: StoreReader, first_height: int, last_height: int, max_bytes: int
) -> list[bytes]:
    """The encoded ``CertifiedBlock``s from ``first_height`` to ``last_height`` the store
    holds, a prefix within ``max_bytes`` (the first block even if larger)."""
    out: list[bytes] = []
    used = 0
    for height in range(max(1, first_height), min(last_height, store.height()) + 1):
        block = certified_block_at(store, height)
        if block is None:
            break
        data = block.encode()
        if out and used + len(data) > max_bytes:
            break
        out.append(data)
        used += len(data)
    return out


def _state_root_at(view: StoreReader, height: int) -> bytes:
    """The state root the block at ``height`` fixes (its whole block decoded)."""
    return decode_block(view.block_at(height) or b"").header.state_root


def _caught_up_at(
    view: StoreReader, chain_id: bytes, window_heights: int
) -> tuple[int, bytes, tuple[bytes, ...]]:
    """``view``'s height, the state root there and ``recent_request_ids``."""
    height = view.height()
    return height, _state_root_at(view, height), recent_request_ids(view, chain_id, window_heights)


def recent_request_ids(
    store: StoreReader, chain_id: bytes, window_heights: int
) -> tuple[bytes, ...]:
    """The request ids (accepted and rejected) of the store's last ``window_heights`` blocks."""
    ids: list[bytes] = []
    top = store.height()
    for height in range(max(1, top - window_heights + 1), top + 1):
        block = decode_block(store.block_at(height) or b"")
        ids.extend(request_id_of(tx.encode(), chain_id) for tx in block.txs)
        ids.extend(request_id_of(r.payload, chain_id) for r in store.rejected_at(height) or ())
    return tuple(ids)


class NodeRuntime:
    """One validator: the core, the app, the mempool, their tasks; see the module docstring."""

    def __init__(
        self,
        *,
        genesis: Genesis,
        identity: SigningIdentity,
        store: Store,
        wal: ConsensusLog,
        links: PeerLinks,
        proof_verifier: ProofVerifier,
        wall_clock_ms: Callable[[], int],
        settings: RuntimeSettings | None = None,
        worker: SerialWorker | None = None,
        reader: SerialWorker | None = None,
    ) -> None:
        self.settings = settings if settings is not None else RuntimeSettings()
        self._genesis = genesis
        # The store is written on the worker thread only (the app, catch-up). Everything
        # on the loop reads ``_committed``: a snapshot the worker takes right after each
        # block, installed here by the loop (see ``_install``).
        self._worker_store = store
        self._unsynced_fetched = False
        """Worker thread only: a caught-up block was written without an fsync."""
        self._committed: StoreSnapshot = store.snapshot()
        self.wal = wal
        self.links = links
        self._verify_proofs = proof_verifier
        self._wall_clock_ms = wall_clock_ms
        self._worker = worker if worker is not None else SerialWorker()
        # Blocks served to catching-up peers are read on their own thread: queued on
        # the worker, a peer's reads (up to 64 blocks each) delayed every execution.
        self._reader = reader if reader is not None else SerialWorker("veil-reader")
        chain_id = genesis.chain_id
        self.config = replica_config_from_genesis(
            genesis,
            identity.public_key,
            tick_ms=self.settings.tick_ms,
            max_inflight_batches=self.settings.max_inflight_batches,
            batch_cut_ms=self.settings.batch_cut_ms,
        )
        self.proof_cache = ProofCache()
        # Bytes the mempool checked (signatures...), so execution skips that repeat.
        self.stateless_cache = StatelessCache()
        self.app = LedgerApp(store, genesis, self.proof_cache, self.stateless_cache)
        self._unfed_waiting = asyncio.Event()
        # Txs whose admission proofs the pool is verifying now, by their bytes: the
        # future is their batch's, done when the proof cache holds the good ones.
        self._in_pool: dict[bytes, asyncio.Future[None]] = {}
        self.mempool = Mempool(
            self._committed,
            genesis,
            self.proof_cache,
            self.settings.mempool,
            stateless_cache=self.stateless_cache,
            on_unfed=self._unfed_waiting.set,
        )
        self.replica = Replica.restore(
            self.config,
            identity.sign_self_tagged,
            verify_self_tagged,
            records=wal.records,
            executed_seq=store.height(),
            state_root=store.state_root(),
            committed_request_ids=recent_request_ids(
                store, chain_id, self.config.request_id_window_heights
            ),
            request_id_of=functools.partial(request_id_of, chain_id=chain_id),
            validate_proposal=validate_proposal_for(genesis),
        )
        self.hub = EventHub()
        self._metrics = NodeMetrics()
        self._metrics.set_msm_backend(self.settings.msm_backend)
        self._metrics.height.set(store.height())
        self._metrics.view.set(self.replica.view)  # a restored node may be past view 0
        self._metrics.wal_records.set(len(wal))
        # Read at scrape: set per block, they froze while the chain stalled.
        self._metrics.mempool_txs.set_function(lambda: len(self.mempool))
        self._metrics.mempool_bytes.set_function(lambda: self.mempool.size_bytes)
        self._metrics.export_mempool_rebuilds(lambda: self.mempool.rebuilds)
        self._wal_compact_at = self.settings.wal_compact_records
        self.wal_compactions = 0
        # When each pending tx was admitted (loop clock), for the commit-latency histogram.
        self._admitted_at_s: dict[bytes, float] = {}
        self._native_threads_seen: set[int] = set()
        self.fault_counts: dict[str, int] = {}
        self.dropped_peer_messages = 0
        self.state_transfers = 0
        """Catch-ups the core asked for (``RequestStateTransfer``) that completed."""
        self.stop_reason: str | None = None
        self.last_commit_ms: int | None = None
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        # Admissions waiting for the proof batcher; it waits on ``_proofs_waiter``
        # until there are ``_proofs_wanted`` of them (no task or timer per tx).
        self._proofs: deque[tuple[ProofWanted, asyncio.Future[SubmitOutcome]]] = deque()
        self._proofs_waiter: asyncio.Future[None] | None = None
        self._proofs_wanted = 1
        self._stopped = asyncio.Event()
        # What GET /v1/txs answers for a rejected tx, also after a restart.
        self._rejections = RecentRejections(self.settings.recent_statuses)
        self._executed_rejections: list[tuple[TxRejectedStatus, bytes]] = []
        """Blocks' final rejections and the bytes they rejected, since the last rebuild."""
        self._refused_gossip: OrderedDict[bytes, None] = OrderedDict()
        """SHA-256 of gossip refused for its bytes alone (``GOSSIP_FAULT_REASONS``)."""
        self._rejections.restore(store, genesis.chain_id)
        self._waiters: dict[bytes, list[asyncio.Future[TxStatus]]] = {}
        self._catchup_target: int | None = None
        """While the core's state transfer runs: the highest height it is fetching to."""
        self._catchup_task: asyncio.Task[None] | None = None
        # Every catch-up and idle probe ranks peers by this one record: a mute peer
        # learnt of once is asked last from then on, until it answers again.
        self._peer_failures = PeerFailures()
        self._header_disputes = HeaderDisputes(self.config.faulty + 1)
        # Set once the start-up catch-up has ended: the core's state transfer waits
        # for it rather than fetch and check the same blocks beside it.
        self._startup_catchup_over = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._peer_indices = [
            i for i in range(self.config.replica_count) if i != self.config.replica_id
        ]

    # --- NodeServices -----------------------------------------------------------

    @property
    def genesis(self) -> Genesis:
        return self._genesis

    @property
    def store(self) -> StoreReader:
        """The chain as last committed: one snapshot, replaced whole after each block."""
        return self._committed

    @property
    def metrics(self) -> NodeMetrics:
        return self._metrics

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    def status(self) -> NodeStatus:
        replica = self.replica
        n = self.config.replica_count
        peers = tuple(
            PeerStatus(i, key, self.links.connected(i))
            for i, key in enumerate(self.config.validators)
            if i != self.config.replica_id
        )
        target = self._catchup_target
        return NodeStatus(
            height=self._committed.height(),
            view=replica.view,
            primary=replica.view % n,
            state_root=self._committed.state_root(),
            last_commit_ms=self.last_commit_ms,
            peers=peers,
            mempool_txs=len(self.mempool),
            mempool_bytes=self.mempool.size_bytes,
            catching_up=None if target is None else CatchUpStatus(target, self._committed.height()),
            stopped=self.stopped,
            stop_reason=self.stop_reason,
            wal_latched=self.wal.latched,
            msm_backend=self.settings.msm_backend,
        )

    async def submit(self, tx_bytes: bytes) -> SubmitOutcome:
        """A client's tx: admitted, then gossiped to every validator."""
        return await self._admit(tx_bytes, gossip=True)

    async def submit_many(self, txs: Sequence[bytes]) -> list[SubmitOutcome | Exception]:
        """A client's batch, each tx as ``submit``, in order, with no task per tx: the
        API gathered one ``submit`` task each, which cost more than an attest's own
        admission (as a task per gossiped tx did). Only the txs whose range proof is
        wanted wait, together; the others are settled (and gossiped) at once."""
        started: list[SubmitOutcome | Exception | asyncio.Future[SubmitOutcome]] = []
        for tx_bytes in txs:
            try:
                admission = self._begin_admission(tx_bytes, gossip=True)
                if isinstance(admission, ProofWanted):
                    started.append(self._queue_proof(admission))
                else:
                    self._after_admission(admission, tx_bytes, gossip=True)
                    started.append(admission)
            except Exception as exc:  # a bug: this item's INTERNAL, not the batch's
                started.append(exc)
        outcomes: list[SubmitOutcome | Exception] = []
        for tx_bytes, item in zip(txs, started, strict=True):
            if not isinstance(item, asyncio.Future):
                outcomes.append(item)
                continue
            try:
                outcome = await item
                self._after_admission(outcome, tx_bytes, gossip=True)
            except Exception as exc:
                outcomes.append(exc)
            else:
                outcomes.append(outcome)
        return outcomes

    def tx_status(self, tx_id: bytes) -> TxStatus:
        committed = self._committed
        location = committed.tx_location(tx_id)
        if location is not None:
            block_hash = committed.block_hash_at(location.height)
            if block_hash is None:
                raise InvariantViolation(f"tx {tx_id.hex()} indexed in a block the view lacks")
            return Committed(tx_id, location.height, location.index_in_block, block_hash)
        if tx_id in self.mempool:
            return Pending(tx_id)
        rejected = self._rejections.get(tx_id)
        return rejected if rejected is not None else Unknown(tx_id)

    async def wait_for_commit(self, tx_id: bytes, timeout_s: float) -> TxStatus:
        status = self.tx_status(tx_id)
        if isinstance(status, Committed | TxRejectedStatus):
            return status
        future: asyncio.Future[TxStatus] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_id, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return self.tx_status(tx_id)
        finally:
            waiting = self._waiters.get(tx_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiters[tx_id]

    def subscribe(self, max_queue: int) -> Subscription:
        return self.hub.subscribe(max_queue)

    # --- inbound from peers -----------------------------------------------------

    def on_peer_message(self, sender: int, message: Message) -> None:
        """A decoded consensus message from the transport; dropped when the queue is full."""
        if self.stopped:
            return
        if self._events.qsize() >= self.settings.max_queued_peer_messages:
            self.dropped_peer_messages += 1
            return
        self._events.put_nowait(MessageReceived(sender, message))

    def on_peer_txs(self, sender: int, txs: Sequence[bytes]) -> None:
        """A chunk of a peer's tx frame: as ``on_peer_tx`` each, with the
        signatures of those not refused before checked as one batch first
        (``Mempool.check_ahead``)."""
        if self.stopped:
            return
        refused = self._refused_gossip
        # Hashed only once some peer has been refused: else a SHA-256 a gossiped tx on
        # every node, to look up a set that stays empty unless a peer misbehaves.
        fresh = [tx for tx in txs if _gossip_digest(tx) not in refused] if refused else txs
        self._observe_signature_batch(
            self.mempool.check_ahead(fresh, self._wall_clock_ms(), from_client=False, peer=sender)
        )
        for tx_bytes in txs:
            self.on_peer_tx(sender, tx_bytes)

    def check_ahead(self, txs: Sequence[bytes]) -> None:
        """A client batch about to be submitted tx by tx: its signatures in one batch."""
        if not self.stopped:
            self._observe_signature_batch(self.mempool.check_ahead(txs, self._wall_clock_ms()))

    def _observe_signature_batch(self, checked: int) -> None:
        if checked:
            self._metrics.signature_batch_size.observe(checked)

    def on_peer_tx(self, sender: int, tx_bytes: bytes) -> None:
        """A tx another validator gossiped: admitted here too, not gossiped again.

        Admitted before this returns unless its range proof is wanted: a task per
        gossiped tx (every tx reaches every node this way) cost more than an
        attest's admission itself. A proof's wait is a callback on its future."""
        if self.stopped:
            return
        if self._refused_gossip and _gossip_digest(tx_bytes) in self._refused_gossip:
            # Refused before for its bytes alone: checking again, a range proof in
            # the pool, would give the same answer.
            self.count_fault(GOSSIP_FAULT, sender, "gossip refused before, sent again")
            self.links.quarantine(sender, GOSSIP_FAULT)
            return
        admission = self._begin_admission(tx_bytes, gossip=False, peer=sender)
        if isinstance(admission, ProofWanted):
            self._queue_proof(admission).add_done_callback(
                functools.partial(self._after_gossiped_proof, tx_bytes, sender)
            )
        else:
            self._after_gossip(admission, tx_bytes, sender)

    def _after_gossiped_proof(
        self, tx_bytes: bytes, sender: int, future: asyncio.Future[SubmitOutcome]
    ) -> None:
        if future.cancelled() or self.stopped:
            return
        self._after_gossip(future.result(), tx_bytes, sender)

    def _after_gossip(self, outcome: SubmitOutcome, tx_bytes: bytes, sender: int) -> None:
        """A validator gossips only txs it admitted; bytes that fail on their own
        (decoding, signature, a range proof) prove its sender faulty, and are
        remembered so that sending them again costs a hash."""
        if isinstance(outcome, Rejected) and outcome.reason_code in GOSSIP_FAULT_REASONS:
            self.count_fault(GOSSIP_FAULT, sender, outcome.reason_code)
            # Each such tx cost a signature check or a proof: without a quarantine a
            # member could send frames of 16,384 of them, one after the other.
            self.links.quarantine(sender, f"{GOSSIP_FAULT} {outcome.reason_code}")
            refused = self._refused_gossip
            refused[_gossip_digest(tx_bytes)] = None
            if len(refused) > REFUSED_GOSSIP_KEPT:
                refused.popitem(last=False)
        self._after_admission(outcome, tx_bytes, gossip=False)

    def count_fault(self, kind: str, peer: int, detail: str) -> None:
        """A peer misbehaved and was survived: counted by kind and logged."""
        self.fault_counts[kind] = self.fault_counts.get(kind, 0) + 1
        self._metrics.faults.labels(kind).inc()
        log.info("peer fault %s from %d: %s", kind, peer, detail)

    async def blocks_for(self, first_height: int, last_height: int, max_bytes: int) -> list[bytes]:
        """What this node serves to a catching-up peer: a prefix within ``max_bytes`` of
        at most ``serve_max_blocks`` blocks. The range comes from a peer, so it is
        clamped before any read, and the reads run on the reader thread (from the
        committed snapshot): a request up to the tip read and encoded every block
        on the event loop, and on the worker thread they delayed execution."""
        first = max(1, first_height)
        last = min(last_height, first + self.settings.serve_max_blocks - 1)
        return await self._reader.run(
            functools.partial(read_certified_blocks, self._committed, first, last, max_bytes)
        )

    # --- run and stop -----------------------------------------------------------

    async def run(self) -> None:
        """Run until ``stop``; a broken invariant raises out of here."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            tasks = [
                group.create_task(self._consensus_loop()),
                group.create_task(self._ticker()),
                group.create_task(self._feeder()),
                group.create_task(self._proof_batcher()),
                group.create_task(self._catch_up_at_start()),
                group.create_task(self._probe_tip_while_idle()),
            ]
            await self._stopped.wait()
            for task in tasks:
                task.cancel()
            if self._catchup_task is not None:
                self._catchup_task.cancel()
        self.hub.close_all()

    def stop(self, reason: str) -> None:
        """Stop feeding the core and sending (idempotent; the first reason stays)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.warning("node stopping: %s", reason)
        self._stopped.set()

    def _halt(self, reason: str) -> None:
        """Stop because something is wrong (not a drain): loud, and the first reason
        kept. Another task may meet the same failure before the node has stopped (the
        catch-up and the core both write the store): that one is logged, not as a halt."""
        if self.stop_reason is None:
            log.error("node halted: %s", reason)
        else:
            log.warning("after the stop: %s", reason)
        self.stop(reason)

    # --- the consensus loop and the executor -----------------------------------

    async def _consensus_loop(self) -> None:
        events = self._events
        most = max(1, self.settings.step_group_max_events)
        while not self.stopped:
            group = [await events.get()]
            while len(group) < most and not events.empty():
                group.append(events.get_nowait())
            await self._step(group)

    async def _step(self, events: Sequence[Event]) -> None:
        """Group commit (module docstring): step every event of ``events``, sync all
        their records in one append, then carry out their other actions in order;
        the ``Executed`` follow-ups of their ``Execute``s form the next group."""
        group: list[Event] = list(events)
        loop = asyncio.get_running_loop()
        while group and not self.stopped:
            actions: list[Action] = []
            for event in group:
                actions.extend(self._step_core(event))
            stage = group_commit(actions)
            if stage.records:
                started_s = loop.time()
                try:
                    await self._worker.run(functools.partial(self.wal.append, stage.records))
                except WalError as exc:
                    self._halt(f"write-ahead log failed: {exc}")
                    return
                self._metrics.wal_sync_seconds.observe(loop.time() - started_s)
                self._metrics.wal_records.set(len(self.wal))
            follow_ups: list[Event] = []
            for action in stage.actions:
                follow_up = await self._carry_out(action)
                if self._stopped.is_set():  # the action stopped the node
                    return
                if follow_up is not None:
                    follow_ups.append(follow_up)
            group = follow_ups
        if len(self.wal) >= self._wal_compact_at and not self.stopped:
            await self._compact_wal()

    def _step_core(self, event: Event) -> list[Action]:
        """One ``Replica.step``; a view change is counted and logged."""
        view_before = self.replica.view
        actions = self.replica.step(event)
        if self.replica.view > view_before:
            self._metrics.view_changes.inc()
            self._metrics.view.set(self.replica.view)
            log.info("view change: now in view %d", self.replica.view)
        return actions

    async def _compact_wal(self) -> None:
        """Rewrite the WAL as its live records (module docstring), between two steps."""
        before = len(self.wal)
        try:
            dropped = await self._worker.run(functools.partial(self.wal.compact, live_records))
        except WalError as exc:
            self._halt(f"write-ahead log compaction failed: {exc}")
            return
        kept = len(self.wal)
        self._wal_compact_at = kept + self.settings.wal_compact_records
        self.wal_compactions += 1
        self._metrics.wal_compactions.inc()
        self._metrics.wal_records.set(kept)
        log.info("write-ahead log compacted: %d records, %d dropped", before, dropped)

    async def _carry_out(self, action: Action) -> Event | None:
        """The one place every consensus action is carried out."""
        match action:
            case Send(to=to, message=message):
                self.links.send(to, message)
            case Broadcast(message=message):
                self.links.broadcast(message)
            case Execute():
                await self._await_admissions_of(action.batch)
                try:
                    done = await self._worker.run(functools.partial(self._execute, action))
                except StoreIOError as exc:
                    # A full or failing disk: the store latched; stop before any vote
                    # on a state this node could not keep.
                    self._halt(f"store write failed at seq {action.seq}: {exc}")
                    return None
                if isinstance(done, Executed):
                    return done
                self._after_block(done)
                return done.applied.executed
            case RequestStateTransfer():
                if self._catchup_task is None or self._catchup_task.done():
                    # In run()'s task group: an exception in catch-up raises out of
                    # run() instead of ending the task unseen (the node stuck).
                    group = self._group
                    if group is None:
                        raise InvariantViolation("a consensus action outside run()")
                    self._catchup_task = group.create_task(self._catch_up(action))
            case ReportFault(kind=kind, peer=peer, detail=detail):
                self.count_fault(kind, peer, detail)
            case Diverged(seq=seq):
                self._halt(f"diverged at seq {seq}: own state root differs from the stable one")
            case Persist():
                raise InvariantViolation("group_commit left a Persist among the actions")
            case _:
                assert_never(action)
        return None

    async def _await_admissions_of(self, batch: Batch) -> None:
        """Let the proof pool finish the admission batch holding ``batch``'s txs.

        Under load a backup can be told to execute a block while the pool is
        verifying some of its txs' proofs for admission. Execution verifies
        what the proof cache lacks in this process, on the worker thread every
        later block waits for, so those proofs were verified twice. Waiting is
        bounded by one pool batch; a tx still queued for the pool is verified
        by execution, and the batcher then finds it in the cache."""
        in_pool = self._in_pool
        if not in_pool:
            return
        waits = {f for r in batch if (f := in_pool.get(r.payload)) is not None}
        if waits:
            await asyncio.wait(waits)

    def _execute(self, action: Execute) -> CommittedBlock | Executed:
        """On the worker thread, where catch-up also applies blocks: a height catch-up
        applied already is not executed again; the root its block fixed is reported."""
        self._sync_fetched()  # the core must not learn of a block a crash could lose
        if action.seq <= self._worker_store.height():
            block = decode_block(self._worker_store.block_at(action.seq) or b"")
            return Executed(action.seq, block.header.state_root)
        applied = self.app.execute(action)
        return CommittedBlock(applied, self._worker_store.snapshot())

    def _install(self, view: StoreSnapshot) -> None:
        """On the loop: readers see ``view`` from now on. Views only move forward (the
        worker's jobs may finish in a different order than the loop resumes them)."""
        if view.height() > self._committed.height():
            self._committed = view

    def _after_block(self, done: CommittedBlock, *, rebuild_mempool: bool = True) -> None:
        """Publish a block's view, settle its txs and announce it. Catch-up passes
        ``rebuild_mempool=False`` and rebuilds once per fetched chunk: a rebuild
        re-checks every pending tx, and a restarted node holds the gossip queued for
        it while it was down, so one rebuild per block made catching up quadratic
        (seconds per block)."""
        self._install(done.view)
        applied = done.applied
        height = applied.executed.seq
        self.last_commit_ms = self._wall_clock_ms()
        chain_id = self._genesis.chain_id
        for index, tx_id in enumerate(applied.tx_ids):
            self._settle(Committed(tx_id, height, index, applied.block_hash))
        # Settled at the next rebuild, which drops the pending copies they spent.
        self._executed_rejections += executed_rejections(
            applied.rejected, height, self._committed, chain_id
        )
        if rebuild_mempool:
            # Live blocks only: a catch-up burst is no measure of the network's rate.
            self.mempool.record_commits(
                len(applied.tx_ids) + len(applied.rejected), self.last_commit_ms
            )
            self.mempool.note_committed(height, applied.tx_ids, applied.state_writes)
            self._rebuild_mempool()
        metrics = self._metrics
        metrics.height.set(height)
        metrics.batch_size_txs.observe(len(applied.tx_ids) + len(applied.rejected))
        self.hub.publish(
            BlockCommitted(
                height,
                applied.block_hash,
                applied.executed.state_root,
                applied.tx_ids,
                applied.timestamp_ms,
            )
        )

    def _rebuild_mempool(self) -> None:
        """The pending txs over the new state; settle the ones that no longer fit, and
        the blocks' rejections since the last rebuild.

        A pending copy with the very bytes a block rejected goes too, though it may
        fit the new state (a byzantine primary ordered a tx before the one it
        depends on): consensus executed its request and drops it as a duplicate
        when fed again, so it would stay pending forever, its inputs held. A copy
        with other bytes (the honest one, beside a forged signature) stays."""
        executed, self._executed_rejections = self._executed_rejections, []
        spent = frozenset(payload for _, payload in executed)
        for tx_id, exc in self.mempool.on_block(self._committed, executed=spent):
            log.info("tx %s dropped from the mempool: %s", tx_id.hex(), exc.reason.value)
            self._settle(TxRejectedStatus(tx_id, exc.reason.value, None))
        for status, _ in executed:
            if status.tx_id not in self.mempool:
                log.info(
                    "tx %s rejected at height %d: %s",
                    status.tx_id.hex(),
                    status.height,
                    status.reason_code,
                )
                self._settle(status)

    def _settle(self, status: Committed | TxRejectedStatus) -> None:
        """A tx reached a final status: remember a rejection, wake waiters, publish."""
        admitted_at_s = self._admitted_at_s.pop(status.tx_id, None)
        if isinstance(status, Committed) and admitted_at_s is not None:
            latency_s = asyncio.get_running_loop().time() - admitted_at_s
            self._metrics.commit_latency_seconds.observe(latency_s)
        if isinstance(status, TxRejectedStatus):
            self._metrics.txs_rejected.labels(status.reason_code).inc()
            self._rejections.remember(status)
        for future in self._waiters.pop(status.tx_id, []):
            if not future.done():
                future.set_result(status)
        if self.hub:
            self.hub.publish(TxStatusChanged(status))

    # --- catch-up ---------------------------------------------------------------

    async def _catch_up(self, request: RequestStateTransfer) -> None:
        """The core's state transfer (``LiveChunks``): plans to the newest stable
        checkpoint the core knows, several peers at once, then on from the first
        peer that has more, to the newest certified height they hold, in one
        pipeline (``node.catchup_pipeline``). Going on spares a request per
        checkpoint the network made while this node caught up: each asked for one
        checkpoint, drained its pipeline and started over. A disputed header ends
        the pipeline; a new one fetches on from our height without its peer."""
        # A restarted node's core asks for the stable checkpoint while the start-up
        # catch-up is fetching the same heights: both fetched, checked and verified
        # every block (a third of a catch-up's node CPU). Plan from where it ended.
        await self._startup_catchup_over.wait()
        peers = tuple(p for p in request.peers if p != self.config.replica_id)
        if request.seq <= self._committed.height() or not peers:
            await self._finish_catch_up(request)
            return
        start_height = self._committed.height()
        checked: set[int] = set()
        self._catchup_target = request.seq
        log.info("catching up from %d to %d and on", start_height, request.seq)
        try:
            while True:
                undisputed = self._undisputed(peers)
                if not undisputed:
                    log.warning("catch-up stalled: every peer served a disputed header")
                    return
                refetch, stalled = await self._transfer(request, undisputed, checked)
                if stalled:
                    log.warning("catch-up stalled: every peer sent a bad block")
                    return
                if not refetch or self.stopped:
                    break
        finally:
            self._catchup_target = None
        log.info(
            "caught up from %d to %d (%d checkpoints checked)",
            start_height,
            self._committed.height(),
            len(checked),
        )
        await self._finish_catch_up(request)

    async def _transfer(
        self, request: RequestStateTransfer, peers: tuple[int, ...], checked: set[int]
    ) -> tuple[bool, bool]:
        """One pipeline of ``_catch_up`` from our height; whether a disputed header
        ended it (fetch again), and whether it stalled. ``checked``: the checkpoints
        whose state root was checked, over all its pipelines."""
        replica = self.replica
        chunks = LiveChunks(
            handed_out=self._committed.height(),
            newest_checkpoint=lambda: max(
                (request.seq, request.state_root), (replica.stable_seq, replica.stable_root)
            ),
            new_plan=functools.partial(self._plan, peers),
            fetch=self._fetch,
            stopped=lambda: self.stopped,
            onward=self._peer_chunks(request.seq + 1, peers),
        )

        async def prepare() -> list[VerifiedBlock]:
            blocks = await chunks.next_chunk()
            if blocks:
                self._catchup_target = max(request.seq, blocks[-1].height)
            await self._preverify_proofs(blocks)
            return blocks

        async def checkpoints_hold() -> bool:
            # Halt at a checkpoint itself, not after the blocks fetched beyond it.
            height = self._committed.height()
            for seq, root in chunks.checkpoints:
                if seq <= height and seq not in checked:
                    checked.add(seq)
                    if not await self._checkpoint_root_holds(seq, root):
                        return False
            return True

        try:
            refetch = await self._run_chunks(prepare, checkpoints_hold)
        finally:
            chunks.close()
            for peer, problem in chunks.all_faults():
                self.count_fault("catchup", peer, problem)
        return refetch, chunks.stalled

    def _plan(self, peers: tuple[int, ...], applied: int, target: int, root: bytes) -> CatchUp:
        settings = self.settings
        return CatchUp(
            applied_height=applied,
            target_height=target,
            target_state_root=root,
            peers=peers,
            genesis=self._genesis,
            verify=verify_self_tagged,
            chunk_blocks=settings.catchup_chunk_blocks,
            max_parallel=settings.catchup_parallel,
            max_bytes_in_flight=settings.catchup_max_bytes,
            failures=self._peer_failures,
        )

    async def _preverify_proofs(self, blocks: Sequence[VerifiedBlock]) -> None:
        """Verify fetched blocks' output proofs in the proof pool, in batches of up to
        ``catchup_proof_batch``, before the worker thread re-executes the blocks and
        finds them in the proof cache. Blocks hold a few txs each when the network
        is not busy, and verifying their proofs block by block costs up to 6× more
        per proof than a large batch (docs/performance.md). Nothing is skipped: a
        statement found bad stays unmarked, and execution judges its tx as before."""
        if not blocks:
            return
        payloads = [request.payload for block in blocks for request in block.batch]
        statements = await self._worker.run(
            functools.partial(output_statements, payloads, self._genesis)
        )
        unseen = self.proof_cache.unseen(statements)
        size = self.settings.catchup_proof_batch
        chunks = [unseen[start : start + size] for start in range(0, len(unseen), size)]
        try:
            results = await asyncio.gather(*(self._verify_proofs(chunk) for chunk in chunks))
        except Exception as exc:  # the pool broke: execution verifies them itself
            log.warning("catch-up proof pre-verification failed: %s", type(exc).__name__)
            return
        for chunk, bad in zip(chunks, results, strict=True):
            rejected = set(bad)
            self.proof_cache.mark_verified(
                [statement for i, statement in enumerate(chunk) if i not in rejected]
            )

    async def _apply_fetched(self, block: VerifiedBlock, *, sync: bool) -> Fetched:
        """Apply a fetched certified block on the worker thread.

        A block that re-executes to another header than the one its peer sent is
        not applied (``_dispute``). A failing disk halts the node."""
        try:
            done = await self._worker.run(functools.partial(self._apply, block, sync))
        except BlockMismatchError as exc:
            return self._dispute(block, exc)
        except StoreIOError as exc:
            self._halt(f"store write failed at height {block.height}: {exc}")
            return Fetched.STOPPED
        if done is None:
            return Fetched.ALREADY_HERE
        self._after_block(done, rebuild_mempool=False)
        return Fetched.NEW

    def _dispute(self, block: VerifiedBlock, mismatch: BlockMismatchError) -> Fetched:
        """A certified batch re-executed to another header than ``block``'s peer sent.
        The certificate does not cover the header: alone, that is the peer's fault
        (it is asked last from now on, and not again for this height). Once f + 1
        peers served that same header, one of them is honest and executed the
        batch to it: this node's state diverged, and it halts (as on ``Diverged``)."""
        peer = block.served_by
        self.count_fault("catchup_header", peer, f"not rebuilt by re-execution: {mismatch}")
        self._peer_failures.failed(peer)
        if self._header_disputes.record(block.height, block.block_hash, peer):
            self._halt(
                f"diverged in catch-up: {self.config.faulty + 1} peers served the header "
                f"re-execution did not rebuild: {mismatch}"
            )
            return Fetched.STOPPED
        return Fetched.DISPUTED

    def _apply(self, block: VerifiedBlock, sync: bool) -> CommittedBlock | None:
        """On the worker thread: a fetched block, unless the core executed it meanwhile.

        Catch-up syncs only the last block of each fetched run (``sync``), and with
        it the earlier ones: an fsync per block was most of a caught-up block's
        time (11 of 26 ms idle). Those blocks are certified and can be fetched
        again, so a crash may lose them but never tear one; the core hears of none
        of them before they are durable (``_sync_fetched`` in ``_execute``)."""
        if block.height <= self._worker_store.height():
            if sync:
                self._sync_fetched()
            return None
        applied = self.app.apply_certified(block, sync=sync)
        self._unsynced_fetched = not sync
        return CommittedBlock(applied, self._worker_store.snapshot())

    def _sync_fetched(self) -> None:
        """On the worker thread: make unsynced caught-up blocks durable."""
        if self._unsynced_fetched:
            self._worker_store.sync()
            self._unsynced_fetched = False

    async def _catch_up_at_start(self) -> None:
        """Before the core learns it is behind: fetch the blocks connected peers have
        beyond our height, each checked against its certificate, then tell the core
        (``StateTransferCompleted``). A peer with nothing more ends it.

        Pipelined one chunk ahead, as the core's state transfer
        (``node.catchup_pipeline``): while the worker thread executes chunk k, chunk
        k+1 is fetched, its certificates checked and its proofs verified in the
        proof pool (another process), so the two overlap on two cores instead of
        alternating (issue 9: 10,000 transfers caught up within 30 s)."""
        try:
            await self._catch_up_from_peers()
        finally:
            self._startup_catchup_over.set()

    async def _catch_up_from_peers(self) -> None:
        loop = asyncio.get_running_loop()
        deadline_s = loop.time() + self.settings.startup_peer_wait_s
        while not any(self.links.connected(p) for p in self._peer_indices):
            if loop.time() > deadline_s or self.stopped:
                return
            await asyncio.sleep(0.05)
        await self._fetch_onward("at start")

    async def _fetch_onward(self, when: str) -> None:
        """Fetch, check and apply the blocks connected peers hold above our height;
        tell the core if there were any. A disputed header ends a pipeline; the next
        fetches on from our height without the peers that served one there."""
        start_height = self._committed.height()
        while not self.stopped:
            peers = self._undisputed(self._peer_indices)
            chunks = self._peer_chunks(self._committed.height() + 1, peers)
            if not await self._run_chunks(functools.partial(self._prepare_chunk, chunks)):
                break
        height = self._committed.height()
        if height > start_height and not self.stopped:
            log.info("caught up %s from %d to %d", when, start_height, height)
            await self._announce_caught_up()

    def _undisputed(self, peers: Sequence[int]) -> tuple[int, ...]:
        """``peers`` but those that served a disputed header at our next height."""
        disputers = self._header_disputes.disputers(self._committed.height() + 1)
        return tuple(p for p in peers if p not in disputers)

    async def _run_chunks(
        self, prepare: PrepareChunk, after: Callable[[], Awaitable[bool]] | None = None
    ) -> bool:
        """Apply what ``prepare`` hands out (``run_pipelined``), ``after`` each chunk
        (False: stop); whether a disputed header ended it, so it is worth fetching
        again from our height."""
        disputed = False

        async def apply(blocks: Sequence[VerifiedBlock]) -> bool:
            nonlocal disputed
            outcome = await self._apply_chunk(blocks)
            if outcome is Fetched.STOPPED:
                return False
            # Also after a dispute: a checkpoint may be among the blocks before it.
            if after is not None and not await after():
                return False
            disputed = outcome is Fetched.DISPUTED
            return not disputed

        await run_pipelined(prepare, apply, lambda: self.stopped)
        return disputed and not self.stopped

    async def _probe_tip_while_idle(self) -> None:
        """After start-up, whenever no block committed for ``idle_probe_s``, ask the
        peers for newer blocks. A node that missed the last blocks before the chain
        went idle otherwise stays behind until the next commit: after all four
        restarted at once, its start-up catch-up asked a peer that had not yet
        replayed them (tests/integration/test_node_faults.py)."""
        await self._startup_catchup_over.wait()
        seen = self._committed.height()
        while not self.stopped:
            await asyncio.sleep(self.settings.idle_probe_s)
            height, seen = seen, self._committed.height()
            catching_up = self._catchup_task is not None and not self._catchup_task.done()
            if seen != height or self.stopped or catching_up:
                continue  # not idle for a whole period
            await self._fetch_onward("while idle")
            seen = self._committed.height()

    def _peer_chunks(self, first: int, peers: Sequence[int]) -> PeerChunks:
        """Chunks from ``first`` on, each from the first connected one of ``peers``
        that has any (``catchup_max_bytes`` each: one request at a time)."""
        return PeerChunks(
            first,
            lambda: [p for p in peers if self.links.connected(p)],
            self._fetch,
            self._genesis,
            verify_self_tagged,
            functools.partial(self.count_fault, "catchup"),
            self.settings.catchup_chunk_blocks,
            self.settings.catchup_max_bytes,
            self._peer_failures,
        )

    async def _prepare_chunk(self, chunks: PeerChunks) -> list[VerifiedBlock]:
        """The next chunk, certificates checked and output proofs verified ahead."""
        blocks = await chunks.next_chunk()
        await self._preverify_proofs(blocks)
        return blocks

    async def _apply_chunk(self, blocks: Sequence[VerifiedBlock]) -> Fetched:
        """Apply a verified chunk in order, one fsync at its end: ``NEW`` if the node
        may go on (something applied or already here), ``DISPUTED`` at a block whose
        header was disputed (the blocks after it not applied), else ``STOPPED``."""
        progressed = False
        for index, checked in enumerate(blocks):
            fetched = await self._apply_fetched(checked, sync=index == len(blocks) - 1)
            if self._stopped.is_set():  # it diverged, or its disk failed
                return Fetched.STOPPED
            if fetched is Fetched.DISPUTED:
                # The core must not hear of the unsynced blocks before it (_sync_fetched).
                if progressed and not await self._sync_fetched_blocks():
                    return Fetched.STOPPED
                break
            progressed = progressed or fetched is Fetched.NEW
        else:
            fetched = Fetched.NEW
        if progressed:
            self._rebuild_mempool()
        if fetched is Fetched.DISPUTED:
            return Fetched.DISPUTED
        if progressed or blocks[-1].height <= self._committed.height():
            return Fetched.NEW
        return Fetched.STOPPED

    async def _sync_fetched_blocks(self) -> bool:
        """``_sync_fetched`` on the worker thread; False if the disk failed (halted)."""
        try:
            await self._worker.run(self._sync_fetched)
        except StoreIOError as exc:
            self._halt(f"store sync failed in catch-up: {exc}")
            return False
        return True

    async def _fetch(self, request: FetchRequest) -> list[bytes] | str:
        try:
            return await asyncio.wait_for(
                self.links.fetch_blocks(
                    request.peer, request.first_height, request.last_height, request.max_bytes
                ),
                self.settings.catchup_fetch_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            return f"fetch failed: {type(exc).__name__}"

    async def _finish_catch_up(self, request: RequestStateTransfer) -> None:
        """Tell the core the node caught up, at the height it reached (``request.seq``
        or beyond), once the state root at ``request.seq`` is the stable checkpoint's."""
        if self.stopped or self._committed.height() < request.seq:
            return
        if not await self._checkpoint_root_holds(request.seq, request.state_root):
            return
        self.state_transfers += 1
        await self._announce_caught_up()

    async def _checkpoint_root_holds(self, seq: int, root: bytes) -> bool:
        """Whether the state root at ``seq`` is the stable checkpoint's ``root``; halts if
        not. The read and decode run on the worker thread, off the loop."""
        own = await self._worker.run(functools.partial(_state_root_at, self._committed, seq))
        if own != root:
            self._halt(f"state root at {seq} after catch-up differs from the stable checkpoint")
            return False
        return True

    async def _announce_caught_up(self) -> None:
        """``StateTransferCompleted`` at the committed height, with its root and the
        request ids of the blocks below it (the core's duplicate window). Those are
        read and decoded from hundreds of blocks: on the worker thread, off the loop.

        The blocks fetched so far are synced first, in the same job: the committed
        view may hold blocks another catch-up applied unsynced (the idle probe's
        chunk, while the core's state transfer finishes), and the core must hear of
        no block a crash could lose."""
        view = self._committed
        try:
            height, root, ids = await self._worker.run(
                functools.partial(self._synced_caught_up_at, view)
            )
        except StoreIOError as exc:
            self._halt(f"store sync failed in catch-up: {exc}")
            return
        self._events.put_nowait(StateTransferCompleted(height, root, ids))

    def _synced_caught_up_at(self, view: StoreReader) -> tuple[int, bytes, tuple[bytes, ...]]:
        """On the worker thread: ``_sync_fetched``, then ``_caught_up_at(view)``."""
        self._sync_fetched()
        return _caught_up_at(view, self._genesis.chain_id, self.config.request_id_window_heights)

    # --- time, feeding, proofs -------------------------------------------------------

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        period_s = self.settings.tick_ms / 1000
        next_at = loop.time()
        ticks = 0
        while not self.stopped:
            next_at = max(next_at + period_s, loop.time())
            await asyncio.sleep(next_at - loop.time())
            self._events.put_nowait(Tick(self._wall_clock_ms()))
            connected = sum(1 for i in self._peer_indices if self.links.connected(i))
            self._metrics.peers_connected.set(connected)
            if ticks % NATIVE_PRIORITY_EVERY_TICKS == 0:
                self._lower_native_threads()
            ticks += 1

    def _lower_native_threads(self) -> None:
        """LevelDB starts its compaction thread when it first needs it: look again
        now and then (a directory listing of a few threads)."""
        nice = self.settings.compaction_nice
        if nice > 0:
            lowered = lower_native_threads(nice, self._native_threads_seen)
            if lowered:
                log.info("background threads %s at nice %d (LevelDB's compaction)", lowered, nice)

    async def _feeder(self) -> None:
        # Woken by the mempool when a tx waits to be fed (polling every 5 ms cost
        # an idle node 4 % of a core); the sleep then gathers what arrives within
        # feed_interval_ms into one ClientBatchReady.
        period_s = self.settings.feed_interval_ms / 1000
        while not self.stopped:
            await self._unfed_waiting.wait()
            await asyncio.sleep(period_s)
            self._unfed_waiting.clear()
            requests = self.mempool.take_unfed(self.settings.feed_max_txs)
            if requests:
                self._events.put_nowait(ClientBatchReady(requests))
            if len(requests) == self.settings.feed_max_txs:
                self._unfed_waiting.set()  # more may be queued behind this batch

    async def _admit(self, tx_bytes: bytes, *, gossip: bool) -> SubmitOutcome:
        admission = self._begin_admission(tx_bytes, gossip=gossip)
        if isinstance(admission, ProofWanted):
            return await self._finish_admission(admission, tx_bytes, gossip=gossip)
        self._after_admission(admission, tx_bytes, gossip=gossip)
        return admission

    def _begin_admission(
        self, tx_bytes: bytes, *, gossip: bool, peer: int | None = None
    ) -> Admission:
        if self.stopped:
            return Busy(NODE_STOPPED, 5_000)
        return self.mempool.admit(tx_bytes, self._wall_clock_ms(), from_client=gossip, peer=peer)

    async def _finish_admission(
        self, wanted: ProofWanted, tx_bytes: bytes, *, gossip: bool
    ) -> SubmitOutcome:
        """Wait for the proof pool's word on ``wanted``, then as ``_after_admission``."""
        outcome = await self._queue_proof(wanted)
        self._after_admission(outcome, tx_bytes, gossip=gossip)
        return outcome

    def _queue_proof(self, wanted: ProofWanted) -> asyncio.Future[SubmitOutcome]:
        """Hand ``wanted`` to the proof batcher; the future gets its admission's outcome."""
        future: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._proofs.append((wanted, future))
        waiter = self._proofs_waiter
        if waiter is not None and len(self._proofs) >= self._proofs_wanted:
            _wake(waiter)
        return future

    def _after_admission(self, outcome: SubmitOutcome, tx_bytes: bytes, *, gossip: bool) -> None:
        if isinstance(outcome, Accepted):
            self._metrics.txs_admitted.inc()
            self._admitted_at_s[outcome.tx_id] = asyncio.get_running_loop().time()
            if gossip:
                self.links.gossip_tx(tx_bytes)
            if self.hub:  # two events a tx for nobody otherwise, on every node
                self.hub.publish(TxStatusChanged(Pending(outcome.tx_id)))
        elif isinstance(outcome, Rejected):
            self._metrics.txs_rejected.labels(outcome.reason_code).inc()
            if outcome.tx_id is not None and gossip:
                # A client's tx this node refused: what GET answers for its id until
                # the node knows better. Never a final status (no waiter is woken,
                # nothing published), nor from a peer's gossip: the id does not cover
                # the signature or witness, so a forged copy of a good tx is refused
                # under the good tx's id, which may still commit.
                self._rejections.remember(
                    TxRejectedStatus(outcome.tx_id, outcome.reason_code, None)
                )

    async def _proof_batcher(self) -> None:
        """A batch: from its first admission, ``proof_batch_wait_ms`` or until
        ``proof_batch_max`` are queued, whichever comes first."""
        wait_s = self.settings.proof_batch_wait_ms / 1000
        most = self.settings.proof_batch_max
        queued = self._proofs
        while not self.stopped:
            await self._proofs_queued(1, None)
            await self._proofs_queued(most, wait_s)
            batch = [queued.popleft() for _ in range(min(most, len(queued)))]
            await self._verify_admission_batch(batch)

    async def _proofs_queued(self, count: int, timeout_s: float | None) -> None:
        """Return once ``count`` admissions are queued, or after ``timeout_s``."""
        if len(self._proofs) >= count:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._proofs_waiter, self._proofs_wanted = waiter, count
        timer = None if timeout_s is None else loop.call_later(timeout_s, _wake, waiter)
        try:
            await waiter
        finally:
            self._proofs_waiter = None
            if timer is not None:
                timer.cancel()

    async def _verify_admission_batch(
        self, batch: list[tuple[ProofWanted, asyncio.Future[SubmitOutcome]]]
    ) -> None:
        """Verify ``batch``'s balance proofs here and its range proofs in the pool, each
        kind as one batch; settle each admission."""
        loop = asyncio.get_running_loop()
        balanced = check_balances([wanted for wanted, _ in batch])
        # Execution may have verified some already (a block ordered before their turn).
        to_verify = []
        for index, (wanted, future) in enumerate(batch):
            if not balanced[index] or self._proofs_cached(wanted):
                # An unbalanced tx is rejected as such (finish reruns its rules), and
                # its range proof, the later check, is not worth the pool's time.
                self._settle_admission(wanted, future, proof_ok=True, balanced=balanced[index])
            else:
                to_verify.append((wanted, future))
        if not to_verify:
            return
        # A tx may carry several statements (a loan's derived ones): verify them all
        # in one batch and map each bad one back to its tx.
        statements: list[RangeStatement] = []
        owners: list[int] = []
        for index, (wanted, _) in enumerate(to_verify):
            statements.extend(wanted.checked.statements)
            owners.extend([index] * len(wanted.checked.statements))
        done: asyncio.Future[None] = loop.create_future()
        for wanted, _ in to_verify:
            self._in_pool[wanted.tx_bytes] = done
        started_s = loop.time()
        try:
            try:
                bad = {owners[i] for i in await self._verify_proofs(statements)}
            except Exception as exc:
                log.error("proof verification failed: %s", type(exc).__name__)
                for wanted, future in to_verify:
                    self.mempool.abandon(wanted)
                    if not future.done():
                        future.set_result(Busy(NODE_STOPPED, 1_000))
                return
            self._metrics.proof_verification_seconds.observe(loop.time() - started_s)
            for index, (wanted, future) in enumerate(to_verify):
                self._settle_admission(wanted, future, proof_ok=index not in bad, balanced=True)
        finally:
            # Only now does the proof cache hold the good ones: wake execution.
            for wanted, _ in to_verify:
                if self._in_pool.get(wanted.tx_bytes) is done:
                    del self._in_pool[wanted.tx_bytes]
            done.set_result(None)

    def _settle_admission(
        self,
        wanted: ProofWanted,
        future: asyncio.Future[SubmitOutcome],
        *,
        proof_ok: bool,
        balanced: bool,
    ) -> None:
        outcome = self.mempool.finish(wanted, proof_ok=proof_ok, balanced=balanced)
        if not future.done():
            future.set_result(outcome)

    def _proofs_cached(self, wanted: ProofWanted) -> bool:
        return not self.proof_cache.unseen(wanted.checked.statements)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _gossip_digest(tx_bytes: bytes) -> bytes:
    """What ``_refused_gossip`` remembers of bytes a peer should not have sent."""
    return hashlib.sha256(tx_bytes).digest()
