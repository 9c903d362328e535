"""Everything one replica knows, and the small helpers every handler shares.

The handlers are plain functions over a ``ReplicaState``, grouped by concern:
``normal_case`` (requests, pre-prepare, prepare, commit, execution),
``checkpoint_handling`` (checkpoints, garbage collection, state transfer),
``view_change_handling`` (VIEW-CHANGE and NEW-VIEW), ``timers`` (ticks and the
view-change timer), ``retransmission`` (what is resent to peers that lost
messages) and ``restart`` (rebuilding from durable records).
``consensus.replica.Replica`` is this state plus ``step`` and ``restore``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from consensus.actions import Action, Broadcast, Persist, ReportFault
from consensus.certificate import Verify
from consensus.checkpoint import CheckpointCollector
from consensus.config import ReplicaConfig
from consensus.invariants import invariant
from consensus.log import MessageLog
from consensus.messages import (
    BatchReply,
    Checkpoint,
    Commit,
    FetchBatch,
    ForwardedRequests,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    PrePrepareHeader,
    ProposalMetadata,
    Request,
    Status,
    ViewChange,
    signed_bytes,
)
from consensus.persistence import Record, VoteRecord
from consensus.proposal import ValidateProposal, monotonic_timestamps
from consensus.quorum import primary_of
from consensus.request_window import RecentIds
from consensus.view_change import authentic

Sign = Callable[[bytes], bytes]
"""``sign(signed_bytes) -> signature`` with this replica's key, injected and pure."""


M = TypeVar(
    "M",
    PrePrepare,
    PrePrepareHeader,
    Prepare,
    Commit,
    Checkpoint,
    ViewChange,
    NewView,
    ForwardedRequests,
    FetchBatch,
    BatchReply,
    Status,
)

RequestIdOf = Callable[[bytes], bytes]
"""``request_id_of(payload) -> request_id``, injected and pure (e.g. the tx hash).

Without it, ids are trusted as given: a byzantine primary could then commit
another payload under an honest request's id, and the honest request would be
dropped as already committed."""

Vote = PrePrepare | Prepare | Commit

VoteKey = tuple[str, int, int]
"""(message kind, view, seq): a replica signs at most one digest per key."""


def vote_key(message: PrePrepare | Prepare | Commit) -> VoteKey:
    return (type(message).__name__, message.view, message.seq)


class ReplicaState:
    """The mutable state of one replica. Handlers append actions to ``outbox``."""

    def __init__(
        self,
        config: ReplicaConfig,
        sign: Sign,
        verify: Verify,
        *,
        request_id_of: RequestIdOf | None = None,
        validate_proposal: ValidateProposal = monotonic_timestamps,
    ) -> None:
        self.config = config
        self.sign_bytes = sign
        self.verify = verify
        self.request_id_of = request_id_of
        self.validate_proposal = validate_proposal
        self.me = config.replica_id
        self.view = 0
        self.view_active = True
        self.now_ticks = 0
        # The latest runtime clock seen in a Tick; it stamps our proposals.
        self.now_ms = 0
        # The metadata of the last executed batch: the parent of the next one
        # once its slot is garbage collected.
        self.last_executed_metadata: ProposalMetadata | None = None
        # Seqs whose proposal in the current view we refused (bad metadata):
        # they keep the view-change timer running, so an insisting primary goes.
        self.refused_proposals: set[int] = set()
        self.last_executed = 0
        self.stable_seq = 0
        self.stable_root = config.genesis_state_root
        self.stable_proof: tuple[Checkpoint, ...] = ()
        self.own_roots: dict[int, bytes] = {0: config.genesis_state_root}
        self.own_checkpoint: Checkpoint | None = None
        self.log = MessageLog()
        self.own_votes: dict[VoteKey, bytes] = {}
        # Requests waiting to execute, oldest first (dicts keep insertion order).
        self.pending: dict[bytes, Request] = {}
        # Pending request id -> the tick it arrived here (fair-order check).
        self.arrival_ticks: dict[bytes, int] = {}
        # (id, tick it became the oldest pending request, tick it arrived):
        # its deadline drives the request timer. Found again only once that
        # request stops pending: looking it up in ``pending`` on every step
        # would scan the holes executed requests leave at a dict's front.
        self.oldest_pending: tuple[bytes, int, int] | None = None
        # The last tick an execution served a request we were waiting for,
        # and the latest arrival tick among the requests that batches proposed
        # in this view served (reset when a view starts): see
        # ``request_deadline``.
        self.last_served_ticks = 0
        self.newest_served_arrival_ticks = -1
        # Requests relayed to the primary of the current view (pruned to the
        # pending ones at each relay, cleared at each view change), and the
        # candidates of the last relay round: a request is relayed only once
        # it has waited a whole round.
        self.relayed: set[bytes] = set()
        self.relay_candidates: set[bytes] = set()
        # The tick the current view became active: no request's deadline in
        # this view counts from before it.
        self.view_since = 0
        # The progress timer: a slot of this view waits to execute (or a
        # proposal was refused); restarted by each execution.
        self.progress_deadline: int | None = None
        self.inflight: dict[bytes, int] = {}
        # Ids committed in the last ``config.request_id_window_heights`` heights.
        self.committed_ids = RecentIds()
        self.checkpoints = CheckpointCollector(config.quorum, config.max_checkpoints_per_sender)
        self.view_changes: dict[int, dict[int, ViewChange]] = {}
        # Every VIEW-CHANGE we signed since we last ran a view. The older ones
        # are still valid votes: a peer that missed them may need them to
        # complete a view we already gave up on (and then move on with us).
        self.own_view_changes: dict[int, ViewChange] = {}
        # The NEW-VIEW of the latest view we ran, kept after we leave it.
        self.new_view_message: NewView | None = None
        self.next_seq = 1
        self.timer_deadline_ticks: int | None = None
        self.backoff_exponent = 0
        self.state_transfer_target: int | None = None
        self.stopped = False
        self.fault_counts: Counter[str] = Counter()
        self.ignored_counts: Counter[str] = Counter()
        self.view_changes_started = 0
        self.new_view_replies: dict[int, int] = {}
        self.may_propose = True
        # peer -> tick we last answered its STATUS
        self.status_replies: dict[int, int] = {}
        # peer -> (retransmission interval, batch replies sent to it in it)
        self.batch_replies: dict[int, tuple[int, int]] = {}
        self.outbox: list[Action] = []

    @property
    def primary(self) -> int:
        return primary_of(self.view, self.config.replica_count)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.me

    @property
    def high_watermark(self) -> int:
        return self.stable_seq + self.config.watermark_window

    def timeout_ticks(self) -> int:
        base = self.config.view_change_timeout_ticks
        cap = self.config.max_view_change_timeout_ticks
        return min(base << min(self.backoff_exponent, 32), cap)

    def request_deadline(self) -> int | None:
        """When the oldest pending request is overdue (docs/consensus.md,
        "Timer rules"): ``min(T * 2^e, C)`` after the latest of when it became
        the oldest, when the view started and, unless it was overtaken, when
        an execution last served a request this replica was waiting for.

        It is *overtaken* once a batch proposed in this view served a request
        that arrived here more than a timeout after it: a primary that takes
        requests oldest first never does that (the timeout covers the gossip
        and relay delay between replicas), so it may be censoring and the
        deadline no longer moves. Otherwise each served request restarts the
        wait (PBFT's rule): an honest primary working through a backlog
        deeper than a timeout is not suspected, while one that serves
        nothing we wait for (filler, or nothing at all) is replaced.
        """
        if not self.view_active or not self.pending:
            return None
        oldest = self.oldest_pending
        if oldest is None:
            request_id = next(iter(self.pending))
            arrived = self.arrival_ticks.get(request_id, self.now_ticks)
            oldest = self.oldest_pending = (request_id, self.now_ticks, arrived)
        timeout = self.timeout_ticks()
        start = max(oldest[1], self.view_since)
        if self.newest_served_arrival_ticks <= oldest[2] + timeout:
            start = max(start, self.last_served_ticks)
        return start + timeout

    def add_pending(self, request: Request) -> None:
        """Hold ``request`` as ``on_requests`` would. Its id must match its payload:
        ``batch_problem`` trusts the id of a request held here with the same bytes."""
        invariant(
            self.request_id_of is None or request.request_id == self.request_id_of(request.payload),
            "a pending request's id must match its payload",
        )
        self.pending[request.request_id] = request
        self.arrival_ticks[request.request_id] = self.now_ticks

    def forget_requests(self, request_ids: Iterable[bytes]) -> int:
        """The requests executed (here or in a transferred state): stop waiting
        for them. Returns the latest arrival tick among those we were waiting
        for (-1: none), and restarts the served clock if there was one. Per
        request on the hot path, hence the bound methods."""
        pending_pop = self.pending.pop
        inflight_pop = self.inflight.pop
        arrival_pop = self.arrival_ticks.pop
        arrivals = [-1]
        keep_arrival = arrivals.append
        for request_id in request_ids:
            pending_pop(request_id, None)
            inflight_pop(request_id, None)
            keep_arrival(arrival_pop(request_id, -1))
        newest_arrival = max(arrivals)
        if newest_arrival >= 0:
            self.last_served_ticks = self.now_ticks
        if self.oldest_pending is not None and self.oldest_pending[0] not in self.pending:
            self.oldest_pending = None
        return newest_arrival

    def remember_committed(self, request_ids: Iterable[bytes], height: int) -> None:
        """Add ids committed at ``height`` and forget those now out of the window."""
        self.committed_ids.add_all(request_ids, height)
        self.committed_ids.expire(self.last_executed - self.config.request_id_window_heights)

    def fault(self, kind: str, peer: int, detail: str) -> None:
        self.fault_counts[kind] += 1
        self.outbox.append(ReportFault(kind, peer, detail))

    def ignore(self, reason: str) -> None:
        self.ignored_counts[reason] += 1

    def signed(self, message: M) -> M:
        signature = self.sign_bytes(signed_bytes(message, self.config.chain_id))
        return replace(message, signature=signature)

    def authentic(self, message: Message) -> bool:
        return authentic(message, self.config, self.verify)

    def in_window(self, seq: int) -> bool:
        return self.stable_seq < seq <= self.high_watermark

    def view_too_far(self, peer: int, view: int) -> bool:
        if view > self.view + self.config.view_bound:
            self.fault("absurd_view", peer, f"view {view} is beyond {self.view} + bound")
            return True
        return False

    def store_own(self, message: PrePrepare | Prepare | Commit) -> None:
        slot = self.log.slot(message.seq)
        match message:
            case PrePrepare():
                slot.pre_prepares[message.view] = message
                slot.keep_needed(message.digest, message.batch, message.metadata)
            case Prepare():
                slot.prepares.setdefault(message.view, {})[self.me] = message
            case Commit():
                by_sender = slot.commits.setdefault(message.view, {})
                by_sender.setdefault(self.me, {})[message.digest] = message

    def parent_metadata(self, seq: int) -> ProposalMetadata | None:
        """The metadata of the batch at ``seq - 1`` as we know it, or None."""
        if seq - 1 == self.last_executed and self.last_executed_metadata is not None:
            return self.last_executed_metadata
        slot = self.log.get(seq - 1)
        return None if slot is None else slot.known_metadata(self.view)

    def cast_votes(self, votes: Sequence[Vote], records_before: tuple[Record, ...] = ()) -> None:
        """The only code that casts votes: sign each, remember it (so nothing
        conflicting is ever signed), persist ``records_before`` and the votes in
        one write, and only then broadcast the votes."""
        cast: list[Vote] = []
        for vote in votes:
            key = vote_key(vote)
            invariant(key not in self.own_votes, f"a second vote for {key}")
            signature = self.sign_bytes(signed_bytes(vote, self.config.chain_id))
            signed = replace(vote, signature=signature)
            self.own_votes[key] = signed.digest
            self.store_own(signed)
            cast.append(signed)
        records = (*records_before, *(VoteRecord(v) for v in cast))
        if records:
            self.outbox.append(Persist(records))
        self.outbox.extend(Broadcast(v) for v in cast)

    def may_vote(self, key: VoteKey, digest: bytes) -> bool:
        """False when we already signed another digest for this key (e.g. before a crash)."""
        prior = self.own_votes.get(key)
        if prior is not None and prior != digest:
            self.ignore("would_conflict")
            return False
        return prior is None
