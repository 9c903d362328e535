"""The PBFT replica: one deterministic state machine, ``step(event) -> actions``.

Every handler validates cheaply first (membership, view, watermarks, exact
duplicates), then checks the signature, then changes state. Peer faults are
counted in ``fault_counts`` and reported, never raised; benign drops (late or
early messages) are counted in ``ignored_counts``. A broken local invariant
raises ``InvariantViolation``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

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
from consensus.certificate import Verify
from consensus.checkpoint import CheckpointCollector, CheckpointOutcome
from consensus.config import ReplicaConfig
from consensus.events import (
    ClientBatchReady,
    Event,
    Executed,
    MessageReceived,
    RequestSubmitted,
    StateTransferCompleted,
    Tick,
)
from consensus.invariants import invariant
from consensus.log import MessageLog, Slot
from consensus.messages import (
    Batch,
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    Request,
    ViewChange,
    batch_digest,
    signed_bytes,
)
from consensus.persistence import (
    PreparedRecord,
    Record,
    StableCheckpointRecord,
    ViewRecord,
    VoteRecord,
)
from consensus.quorum import primary_of
from consensus.shape import request_well_formed, shape_problem
from consensus.view_change import (
    NewViewPlan,
    authentic,
    new_view_problem,
    plan_new_view,
    view_change_problem,
)

Sign = Callable[[bytes], bytes]
"""``sign(signed_bytes) -> signature`` with this replica's key, injected and pure."""

MAX_REQUEST_ID_BYTES = 64

MAX_RESENT_VIEW_CHANGES = 4
"""How many of our latest VIEW-CHANGEs (for consecutive failed views) we keep resending."""

M = TypeVar("M", PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)

VoteKey = tuple[str, int, int]
"""(message kind, view, seq): a replica signs at most one digest per key."""


class Replica:
    def __init__(self, config: ReplicaConfig, sign: Sign, verify: Verify) -> None:
        self.config = config
        self._sign_bytes = sign
        self._verify = verify
        self.me = config.replica_id
        self.view = 0
        self.view_active = True
        self.now_ticks = 0
        self.last_executed = 0
        self.stable_seq = 0
        self.stable_root = config.genesis_state_root
        self.stable_proof: tuple[Checkpoint, ...] = ()
        self.own_roots: dict[int, bytes] = {0: config.genesis_state_root}
        self.own_checkpoint: Checkpoint | None = None
        self.log = MessageLog()
        self.own_votes: dict[VoteKey, bytes] = {}
        self.pending: dict[bytes, Request] = {}
        self.inflight: dict[bytes, int] = {}
        self.committed_ids: set[bytes] = set()
        self.checkpoints = CheckpointCollector(config.quorum, config.max_checkpoints_per_sender)
        self.view_changes: dict[int, dict[int, ViewChange]] = {}
        # Every VIEW-CHANGE we signed since we last ran a view. The older ones
        # are still valid votes: a peer that missed them may need them to
        # complete a view we already gave up on (and then move on with us).
        self.own_view_changes: dict[int, ViewChange] = {}
        # The NEW-VIEW of the latest view we ran, kept after we leave it.
        self.new_view_message: NewView | None = None
        self.next_seq = 1
        self.timer_deadline: int | None = None
        self.backoff_exponent = 0
        self.state_transfer_target: int | None = None
        self.stopped = False
        self.fault_counts: Counter[str] = Counter()
        self.ignored_counts: Counter[str] = Counter()
        self.view_changes_started = 0
        self._new_view_replies: dict[int, int] = {}
        self._may_propose = True
        self._out: list[Action] = []

    # --- restart -----------------------------------------------------------

    @classmethod
    def restore(
        cls,
        config: ReplicaConfig,
        sign: Sign,
        verify: Verify,
        *,
        records: Sequence[Record],
        executed_seq: int,
        state_root: bytes,
        committed_request_ids: Iterable[bytes] = (),
    ) -> Replica:
        """Rebuild a replica from its durable records and the application's height.

        Every vote it ever signed (and synced) is back in ``own_votes``, so it
        refuses to sign anything that conflicts with what it said before.
        """
        replica = cls(config, sign, verify)
        for record in records:
            replica._replay(record)
        replica.last_executed = executed_seq
        replica.own_roots[executed_seq] = state_root
        replica.committed_ids.update(committed_request_ids)
        replica._garbage_collect()
        if executed_seq < replica.stable_seq:
            replica.state_transfer_target = replica.stable_seq
        elif executed_seq > replica.stable_seq and executed_seq % config.checkpoint_interval == 0:
            # Re-sign our checkpoint: peers may need it to make this height stable.
            checkpoint = replica._signed(Checkpoint(executed_seq, state_root, replica.me))
            replica.own_checkpoint = checkpoint
            replica.checkpoints.add(checkpoint)
        for (kind, view, seq), _ in replica.own_votes.items():
            if kind == "PrePrepare" and view == replica.view:
                replica.next_seq = max(replica.next_seq, seq + 1)
        replica.next_seq = max(replica.next_seq, replica.stable_seq + 1)
        for seq in list(replica.log.slots):
            slot = replica.log.slots[seq]
            pp = slot.pre_prepares.get(replica.view)
            if pp is not None and replica.view_active:
                for request in pp.batch:
                    replica.inflight[request.request_id] = seq
        return replica

    def _replay(self, record: Record) -> None:
        match record:
            case ViewRecord(view=view, active=active):
                if (view, active) >= (self.view, self.view_active) or view > self.view:
                    self.view, self.view_active = view, active
                if active:
                    for old in [v for v in self.own_view_changes if v <= view]:
                        del self.own_view_changes[old]
            case VoteRecord(message=message):
                self._replay_vote(message)
            case PreparedRecord(certificate=cert):
                slot = self.log.slot(cert.pre_prepare.seq)
                if slot.prepared is None or slot.prepared.pre_prepare.view < cert.pre_prepare.view:
                    slot.prepared = cert
                slot.remember_batch(cert.pre_prepare.digest, cert.pre_prepare.batch)
            case StableCheckpointRecord(seq=seq, state_root=root, proof=proof):
                if seq > self.stable_seq:
                    self.stable_seq, self.stable_root, self.stable_proof = seq, root, proof

    def _replay_vote(self, message: Message) -> None:
        match message:
            case PrePrepare() | Prepare() | Commit():
                self.own_votes[_vote_key(message)] = message.digest
                self._store_own(message)
            case ViewChange():
                self.view_changes.setdefault(message.new_view, {})[self.me] = message
                self.own_view_changes[message.new_view] = message
            case NewView():
                if self.new_view_message is None or message.view > self.new_view_message.view:
                    self.new_view_message = message
            case Checkpoint():
                pass

    # --- the state machine -------------------------------------------------

    def step(self, event: Event) -> list[Action]:
        """Feed one event; return what the runtime must do, in order."""
        if self.stopped:
            return []
        self._out = []
        match event:
            case RequestSubmitted(request=request):
                self._on_requests((request,))
            case ClientBatchReady(requests=requests):
                self._on_requests(requests)
            case MessageReceived(sender=peer, message=message):
                self._on_message(peer, message)
            case Tick():
                self._on_tick()
            case Executed(seq=seq, state_root=root):
                self._on_executed(seq, root)
            case StateTransferCompleted(seq=seq, state_root=root, committed_request_ids=ids):
                self._on_state_transfer_completed(seq, root, ids)
        if not self.stopped:
            self._refresh_timer()
        out, self._out = self._out, []
        return out

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

    # --- helpers -----------------------------------------------------------

    def _fault(self, kind: str, peer: int, detail: str) -> None:
        self.fault_counts[kind] += 1
        self._out.append(ReportFault(kind, peer, detail))

    def _ignore(self, reason: str) -> None:
        self.ignored_counts[reason] += 1

    def _signed(self, message: M) -> M:
        signature = self._sign_bytes(signed_bytes(message, self.config.chain_id))
        return replace(message, signature=signature)

    def _authentic(self, message: Message) -> bool:
        return authentic(message, self.config, self._verify)

    def _in_window(self, seq: int) -> bool:
        return self.stable_seq < seq <= self.high_watermark

    def _store_own(self, message: PrePrepare | Prepare | Commit) -> None:
        slot = self.log.slot(message.seq)
        match message:
            case PrePrepare():
                slot.pre_prepares[message.view] = message
                slot.remember_batch(message.digest, message.batch)
            case Prepare():
                slot.prepares.setdefault(message.view, {})[self.me] = message
            case Commit():
                by_sender = slot.commits.setdefault(message.view, {})
                by_sender.setdefault(self.me, {})[message.digest] = message

    def _may_vote(self, key: VoteKey, digest: bytes) -> bool:
        """False when we already signed another digest for this key (e.g. before a crash)."""
        prior = self.own_votes.get(key)
        if prior is not None and prior != digest:
            self._ignore("would_conflict")
            return False
        return prior is None

    # --- requests and proposals -------------------------------------------

    def _on_requests(self, requests: Iterable[Request]) -> None:
        if not isinstance(requests, tuple):
            self._ignore("malformed_request")
            return
        for request in requests:
            if (
                not request_well_formed(request)
                or len(request.payload) > self.config.max_request_bytes
                or not 0 < len(request.request_id) <= MAX_REQUEST_ID_BYTES
            ):
                self._ignore("malformed_request")
            elif request.request_id in self.committed_ids or request.request_id in self.pending:
                self._ignore("duplicate_request")
            else:
                self.pending[request.request_id] = request
                self._may_propose = True
        self._propose()

    def _propose(self) -> None:
        if (
            not self.is_primary
            or not self.view_active
            or self.state_transfer_target is not None
            or self.last_executed < self.stable_seq
        ):
            return
        self.next_seq = max(self.next_seq, self.stable_seq + 1)
        room = self.high_watermark - self.next_seq + 1
        if not self._may_propose or room <= 0:
            return
        # One pass over the pending requests, and only when something changed
        # (a request arrived, the window moved, a view started): scanning a deep
        # mempool on every message would dominate the core's cost.
        size = self.config.max_batch_size
        fresh: list[Request] = []
        for request_id, request in self.pending.items():
            if request_id not in self.inflight:
                fresh.append(request)
                if len(fresh) >= room * size:
                    break
        if len(fresh) < room * size:
            self._may_propose = False
        for first in range(0, len(fresh), size):
            batch = fresh[first : first + size]
            seq = self.next_seq
            self.next_seq += 1
            frozen_batch = tuple(batch)
            digest = batch_digest(frozen_batch, self.config.chain_id)
            key: VoteKey = ("PrePrepare", self.view, seq)
            invariant(key not in self.own_votes, f"primary reuses seq {seq} in view {self.view}")
            pre_prepare = self._signed(PrePrepare(self.view, seq, digest, frozen_batch, self.me))
            self.own_votes[key] = digest
            self._store_own(pre_prepare)
            for request in frozen_batch:
                self.inflight[request.request_id] = seq
            self._out.append(Persist((VoteRecord(pre_prepare),)))
            self._out.append(Broadcast(pre_prepare))

    # --- peer messages -----------------------------------------------------

    def _on_message(self, peer: int, message: Message) -> None:
        problem = shape_problem(message)
        if problem is not None:
            self._fault("malformed", peer, problem)
            return
        if not 0 <= message.sender < self.config.replica_count:
            self._fault("not_member", peer, f"sender {message.sender} is not a validator")
            return
        if message.sender == self.me:
            self._ignore("own_message")
            return
        match message:
            case PrePrepare():
                self._on_pre_prepare(peer, message)
            case Prepare():
                self._on_prepare(peer, message)
            case Commit():
                self._on_commit(peer, message)
            case Checkpoint():
                self._on_checkpoint(peer, message)
            case ViewChange():
                self._on_view_change(peer, message)
            case NewView():
                self._on_new_view(peer, message)

    def _view_too_far(self, peer: int, view: int) -> bool:
        if view > self.view + self.config.view_bound:
            self._fault("absurd_view", peer, f"view {view} is beyond {self.view} + bound")
            return True
        return False

    def _batch_problem(self, batch: Batch) -> str | None:
        if not batch:
            return "empty batch outside a new-view"
        if len(batch) > self.config.max_batch_size:
            return "batch too large"
        ids = {r.request_id for r in batch}
        if len(ids) != len(batch):
            return "batch repeats a request"
        for r in batch:
            if (
                len(r.payload) > self.config.max_request_bytes
                or not 0 < len(r.request_id) <= MAX_REQUEST_ID_BYTES
            ):
                return "malformed request in batch"
        return None

    def _on_pre_prepare(self, peer: int, pp: PrePrepare) -> None:
        n = self.config.replica_count
        if self._view_too_far(peer, pp.view):
            return
        if pp.sender != primary_of(pp.view, n):
            self._fault("not_primary", peer, f"pre-prepare from {pp.sender} in view {pp.view}")
            return
        if not self._in_window(pp.seq):
            self._ignore("outside_watermarks")
            return
        voting = pp.view == self.view and self.view_active
        slot = self.log.get(pp.seq)
        known = slot.pre_prepares.get(pp.view) if slot is not None else None
        unvoted = voting and ("Prepare", pp.view, pp.seq) not in self.own_votes
        if known == pp and not unvoted:
            self._ignore("duplicate")
            return
        if known != pp:
            if not self._authentic(pp):
                self._fault("bad_signature", peer, "pre-prepare")
                return
            if pp.digest != batch_digest(pp.batch, self.config.chain_id):
                self._fault("digest_mismatch", peer, f"pre-prepare seq {pp.seq}")
                return
            problem = self._batch_problem(pp.batch)
            if problem is not None:
                self._fault("invalid_batch", peer, problem)
                return
        if known is not None and known.digest != pp.digest:
            # The primary signed both, so blame it, not the relay; still keep the
            # batch, since a commit certificate may name this digest.
            self._fault("equivocation", pp.sender, f"two pre-prepares for ({pp.view}, {pp.seq})")
            slot = self.log.slot(pp.seq)
            slot.remember_batch(pp.digest, pp.batch)
            self._advance(slot)
            return
        if voting:
            for request in pp.batch:
                at = self.inflight.get(request.request_id)
                if request.request_id in self.committed_ids or (at is not None and at != pp.seq):
                    self._fault("duplicate_request", peer, f"request repeated at seq {pp.seq}")
                    return
        slot = self.log.slot(pp.seq)
        if not voting:
            # Not ours to vote on (another view, or waiting for NEW-VIEW); kept
            # (within a cap) so a commit certificate of that view can be executed,
            # and voted on if it is retransmitted once we run that view.
            slot.park_pre_prepare(pp)
            self._ignore("future_view" if pp.view > self.view else "stale_view")
            self._advance(slot)
            return
        slot.pre_prepares[pp.view] = pp
        slot.remember_batch(pp.digest, pp.batch)
        for request in pp.batch:
            self.inflight[request.request_id] = pp.seq
        key: VoteKey = ("Prepare", pp.view, pp.seq)
        if self._may_vote(key, pp.digest):
            prepare = self._signed(Prepare(pp.view, pp.seq, pp.digest, self.me))
            self.own_votes[key] = pp.digest
            self._store_own(prepare)
            self._out.append(Persist((VoteRecord(prepare),)))
            self._out.append(Broadcast(prepare))
        self._advance(slot)

    def _on_prepare(self, peer: int, prepare: Prepare) -> None:
        n = self.config.replica_count
        if self._view_too_far(peer, prepare.view):
            return
        if prepare.sender == primary_of(prepare.view, n):
            self._fault("prepare_from_primary", peer, f"view {prepare.view}")
            return
        if not self._in_window(prepare.seq):
            self._ignore("outside_watermarks")
            return
        if prepare.view != self.view or not self.view_active:
            self._ignore("future_view" if prepare.view > self.view else "stale_view")
            if prepare.view < self.view and peer == prepare.sender:
                self._help_lagging_peer(peer, prepare.view + 1)
            return
        slot = self.log.slot(prepare.seq)
        known = slot.prepares.get(prepare.view, {}).get(prepare.sender)
        if known == prepare:
            self._ignore("duplicate")
            return
        if not self._authentic(prepare):
            self._fault("bad_signature", peer, "prepare")
            return
        if known is not None:
            detail = f"two prepares for ({prepare.view}, {prepare.seq})"
            self._fault("conflicting_vote", prepare.sender, detail)
            return
        slot.prepares.setdefault(prepare.view, {})[prepare.sender] = prepare
        self._advance(slot)

    def _on_commit(self, peer: int, commit: Commit) -> None:
        if self._view_too_far(peer, commit.view):
            return
        if not self._in_window(commit.seq):
            self._ignore("outside_watermarks")
            return
        slot = self.log.slot(commit.seq)
        known = slot.commits.get(commit.view, {}).get(commit.sender, {})
        if known.get(commit.digest) == commit:
            self._ignore("duplicate")
            return
        if not self._authentic(commit):
            self._fault("bad_signature", peer, "commit")
            return
        if known:
            detail = f"two commits for ({commit.view}, {commit.seq})"
            self._fault("conflicting_vote", commit.sender, detail)
        # Commits of any view count: 2f+1 of them prove the batch committed, which
        # lets a replica stuck in a view change still follow the chain.
        if not slot.add_commit(commit):
            return
        self._advance(slot)

    def _advance(self, slot: Slot) -> None:
        """Move a slot forward: prepared -> send COMMIT; commit quorum -> execute."""
        if self.view_active and slot.seq > self.stable_seq:
            key: VoteKey = ("Commit", self.view, slot.seq)
            if key not in self.own_votes:
                cert = slot.prepared_certificate(self.view, 2 * self.config.faulty)
                if cert is not None:
                    digest = cert.pre_prepare.digest
                    if slot.prepared is None or slot.prepared.pre_prepare.view <= self.view:
                        slot.prepared = cert
                    if self._may_vote(key, digest):
                        commit = self._signed(Commit(self.view, slot.seq, digest, self.me))
                        self.own_votes[key] = digest
                        self._store_own(commit)
                        records = (PreparedRecord(cert), VoteRecord(commit))
                        self._out.append(Persist(records))
                        self._out.append(Broadcast(commit))
        if slot.committed is None and slot.seq > self.last_executed:
            slot.committed = slot.commit_certificate(self.config.quorum)
        self._execute_ready()

    def _execute_ready(self) -> None:
        progressed = False
        while self.state_transfer_target is None:
            seq = self.last_executed + 1
            slot = self.log.get(seq)
            if slot is None or slot.committed is None:
                break
            cert = slot.committed
            batch = slot.batches[cert.digest]
            self._out.append(Execute(seq, batch, cert))
            self.last_executed = seq
            progressed = True
            for request in batch:
                self.committed_ids.add(request.request_id)
                self.pending.pop(request.request_id, None)
                self.inflight.pop(request.request_id, None)
        if progressed:
            if self.view_active:
                self.backoff_exponent = 0
            self.timer_deadline = None
            self._propose()

    # --- checkpoints and state transfer -----------------------------------

    def _on_executed(self, seq: int, root: bytes) -> None:
        invariant(0 < seq <= self.last_executed, f"executed {seq} was never handed out")
        if seq == self.stable_seq and root != self.stable_root:
            self._diverge(seq, root, self.stable_root)
            return
        if seq % self.config.checkpoint_interval or seq <= self.stable_seq:
            return
        self.own_roots[seq] = root
        checkpoint = self._signed(Checkpoint(seq, root, self.me))
        self.own_checkpoint = checkpoint
        self.checkpoints.add(checkpoint)
        self._out.append(Broadcast(checkpoint))
        self._check_stable(checkpoint)

    def _on_checkpoint(self, peer: int, checkpoint: Checkpoint) -> None:
        if checkpoint.seq <= 0 or checkpoint.seq % self.config.checkpoint_interval:
            self._fault("bad_checkpoint", peer, f"checkpoint at {checkpoint.seq}")
            return
        if checkpoint.seq <= self.stable_seq:
            self._ignore("stale_checkpoint")
            return
        known = self.checkpoints.by_sender.get(checkpoint.sender, {}).get(checkpoint.seq)
        if known == checkpoint:
            self._ignore("duplicate")
            return
        if not self._authentic(checkpoint):
            self._fault("bad_signature", peer, "checkpoint")
            return
        if self.checkpoints.add(checkpoint) is CheckpointOutcome.CONFLICT:
            self._fault(
                "conflicting_checkpoint", checkpoint.sender, f"two roots at {checkpoint.seq}"
            )
            return
        self._check_stable(checkpoint)

    def _check_stable(self, checkpoint: Checkpoint) -> None:
        proof = self.checkpoints.proof_for(checkpoint.seq, checkpoint.state_root)
        if proof is not None:
            self._make_stable(checkpoint.seq, checkpoint.state_root, proof)
            self._propose()  # the window moved up

    def _make_stable(self, seq: int, root: bytes, proof: tuple[Checkpoint, ...]) -> None:
        if seq <= self.stable_seq:
            return
        own = self.own_roots.get(seq)
        if own is not None and own != root:
            self._diverge(seq, own, root)
            return
        self.stable_seq, self.stable_root, self.stable_proof = seq, root, proof
        self._out.append(Persist((StableCheckpointRecord(seq, root, proof),)))
        self._garbage_collect()
        if self.last_executed < seq:
            # Peers have dropped the log below ``seq``: only their state can help us.
            self.state_transfer_target = seq
            self._request_state_transfer()

    def _request_state_transfer(self) -> None:
        peers = tuple(sorted(c.sender for c in self.stable_proof if c.sender != self.me))
        self._out.append(RequestStateTransfer(self.stable_seq, self.stable_root, peers))

    def _garbage_collect(self) -> None:
        stable = self.stable_seq
        self._may_propose = True  # the window moved and in-flight requests may be freed
        self.log.garbage_collect(stable)
        self.checkpoints.garbage_collect(stable)
        for seq in [s for s in self.own_roots if s < stable]:
            del self.own_roots[seq]
        # Votes at or below the stable checkpoint can never be signed again: the
        # watermarks refuse those sequence numbers.
        for key in [k for k in self.own_votes if k[2] <= stable]:
            del self.own_votes[key]
        for request_id in [r for r, s in self.inflight.items() if s <= stable]:
            del self.inflight[request_id]

    def _on_state_transfer_completed(self, seq: int, root: bytes, ids: tuple[bytes, ...]) -> None:
        if seq <= self.last_executed:
            self._ignore("stale_state_transfer")
            return
        if seq == self.stable_seq and root != self.stable_root:
            self._diverge(seq, root, self.stable_root)
            return
        self.last_executed = seq
        if seq % self.config.checkpoint_interval == 0:
            self.own_roots[seq] = root
        self._may_propose = True
        self.committed_ids.update(ids)
        for request_id in ids:
            self.pending.pop(request_id, None)
            self.inflight.pop(request_id, None)
        target = self.state_transfer_target
        if target is not None and seq >= target:
            self.state_transfer_target = None
        elif target is not None:
            self._request_state_transfer()
        self.timer_deadline = None
        self._execute_ready()
        self._propose()

    def _diverge(self, seq: int, own: bytes, stable: bytes) -> None:
        self._out.append(Diverged(seq, own, stable))
        self.stopped = True

    # --- timers and retransmission ------------------------------------------

    def _on_tick(self) -> None:
        self.now_ticks += 1
        if self.now_ticks % self.config.retransmit_interval_ticks == 0:
            self._retransmit()
            if self.state_transfer_target is not None:
                self._request_state_transfer()
        if self.timer_deadline is not None and self.now_ticks >= self.timer_deadline:
            self.timer_deadline = None
            self.backoff_exponent += 1
            self._start_view_change(self.view + 1)
            return
        self._propose()

    def _has_work(self) -> bool:
        if self.pending:
            return True
        return any(
            seq > self.last_executed and self.view in slot.pre_prepares
            for seq, slot in self.log.slots.items()
        )

    def _refresh_timer(self) -> None:
        """PBFT's timer: in a view, it runs while work waits; in a view change, it
        runs once 2f+1 view-changes for the target view are in (before that a
        lone replica waits instead of racing through views)."""
        if self.view_active:
            if not self._has_work():
                self.timer_deadline = None
            elif self.timer_deadline is None:
                self.timer_deadline = self.now_ticks + self.timeout_ticks()
        elif (
            self.timer_deadline is None
            and len(self.view_changes.get(self.view, {})) >= self.config.quorum
        ):
            self.timer_deadline = self.now_ticks + self.timeout_ticks()

    def _retransmit(self) -> None:
        """Resend what peers may have lost: the network drops messages."""
        if not self.view_active:
            recent = sorted(self.own_view_changes.items())[-MAX_RESENT_VIEW_CHANGES:]
            self._out.extend(Broadcast(vc) for _, vc in recent)
        else:
            for _, slot in sorted(self.log.slots.items()):
                mine: list[Message] = []
                # Backups relay the primary's pre-prepare too: a replica that
                # missed it (or got an equivocating one) needs the batch.
                pp = slot.pre_prepares.get(self.view)
                if pp is not None:
                    mine.append(pp)
                prepare = slot.prepares.get(self.view, {}).get(self.me)
                if prepare is not None:
                    mine.append(prepare)
                if slot.committed is not None:
                    # Relay the whole certificate: a replica outside this view
                    # (or one a byzantine peer lied to) can still execute.
                    mine.extend(slot.committed.commits)
                else:
                    commit = slot.own_commit(self.view, self.me)
                    if commit is not None:
                        mine.append(commit)
                self._out.extend(Broadcast(m) for m in mine)
        # The stable proof is relayed whole: a lagging or restarted replica learns
        # from any one honest peer that it must fetch state.
        self._out.extend(Broadcast(c) for c in self.stable_proof)
        if self.own_checkpoint is not None and self.own_checkpoint.seq > self.stable_seq:
            self._out.append(Broadcast(self.own_checkpoint))

    # --- view change -------------------------------------------------------

    def _start_view_change(self, new_view: int) -> None:
        invariant(new_view > self.view, f"view change from {self.view} back to {new_view}")
        self.view = new_view
        self.view_active = False
        self.timer_deadline = None
        self.inflight.clear()
        self._may_propose = True
        self.view_changes_started += 1
        certs = tuple(
            c for c in self.log.prepared_certificates() if c.pre_prepare.seq > self.stable_seq
        )
        vc = self._signed(
            ViewChange(
                new_view, self.stable_seq, self.stable_root, self.stable_proof, certs, self.me
            )
        )
        self.own_view_changes[new_view] = vc
        for view in [v for v in self.view_changes if v < new_view]:
            del self.view_changes[view]
        self.view_changes.setdefault(new_view, {})[self.me] = vc
        self._out.append(Persist((ViewRecord(new_view, False), VoteRecord(vc))))
        self._out.append(Broadcast(vc))
        self._try_new_view()

    def _on_view_change(self, peer: int, vc: ViewChange) -> None:
        if self._view_too_far(peer, vc.new_view):
            return
        if vc.new_view < self.view or (vc.new_view == self.view and self.view_active):
            self._ignore("stale_view_change")
            self._help_lagging_peer(vc.sender, vc.new_view)
            return
        known = self.view_changes.get(vc.new_view, {}).get(vc.sender)
        if known == vc:
            self._ignore("duplicate")
            return
        if not self._authentic(vc):
            self._fault("bad_signature", peer, "view-change")
            return
        problem = view_change_problem(vc, self.config, self._verify)
        if problem is not None:
            self._fault("invalid_view_change", peer, problem)
            return
        if known is not None:
            detail = f"two view-changes to {vc.new_view}"
            self._fault("conflicting_view_change", vc.sender, detail)
            return
        self.view_changes.setdefault(vc.new_view, {})[vc.sender] = vc
        if not self._maybe_join():
            self._try_new_view()

    def _help_lagging_peer(self, peer: int, needs_view: int) -> None:
        """A peer is stuck below a view we reached: forward the latest NEW-VIEW we
        ran (even if we have since moved on) so it can enter that view and then
        follow us, instead of waiting for a quorum that will never form."""
        nv = self.new_view_message
        if nv is None or nv.view < needs_view or not 0 <= peer < self.config.replica_count:
            return
        last = self._new_view_replies.get(peer)
        if last is not None and self.now_ticks - last < self.config.retransmit_interval_ticks:
            return
        self._new_view_replies[peer] = self.now_ticks
        self._out.append(Send(peer, nv))

    def _maybe_join(self) -> bool:
        """PBFT's join rule: f+1 replicas asking for views above ours include an honest one."""
        highest: dict[int, int] = {}
        for view, by_sender in self.view_changes.items():
            if view > self.view:
                for sender in by_sender:
                    highest[sender] = max(highest.get(sender, 0), view)
        if len(highest) < self.config.weak_quorum:
            return False
        target = sorted(highest.values(), reverse=True)[self.config.weak_quorum - 1]
        if target <= self.view:
            return False
        self._start_view_change(target)
        return True

    def _try_new_view(self) -> None:
        if self.view_active or not self.is_primary:
            return
        vcs = self.view_changes.get(self.view, {})
        if len(vcs) < self.config.quorum:
            return
        chosen = tuple(vc for _, vc in sorted(vcs.items())[: self.config.quorum])
        plan = plan_new_view(chosen, self.config)
        pre_prepares: list[PrePrepare] = []
        for seq, digest, batch in plan.batches:
            key: VoteKey = ("PrePrepare", self.view, seq)
            invariant(key not in self.own_votes, f"new primary reuses seq {seq}")
            pre_prepares.append(self._signed(PrePrepare(self.view, seq, digest, batch, self.me)))
        nv = self._signed(NewView(self.view, chosen, tuple(pre_prepares), self.me))
        records: list[Record] = [ViewRecord(self.view, True), VoteRecord(nv)]
        records.extend(VoteRecord(pp) for pp in pre_prepares)
        self._out.append(Persist(tuple(records)))
        self._out.append(Broadcast(nv))
        self._enter_view(nv, plan)

    def _on_new_view(self, peer: int, nv: NewView) -> None:
        if self._view_too_far(peer, nv.view):
            return
        if nv.view < self.view or (nv.view == self.view and self.view_active):
            self._ignore("stale_new_view")
            return
        if not self._authentic(nv):
            self._fault("bad_signature", peer, "new-view")
            return
        problem, plan = new_view_problem(nv, self.config, self._verify)
        if problem is not None or plan is None:
            self._fault("invalid_new_view", peer, problem or "no plan")
            return
        self._enter_view(nv, plan)

    def _enter_view(self, nv: NewView, plan: NewViewPlan) -> None:
        primary = self.me == nv.sender
        for view in [v for v in self.own_view_changes if v <= nv.view]:
            del self.own_view_changes[view]
        self._may_propose = True
        self.view = nv.view
        self.view_active = True
        self.new_view_message = nv
        self.timer_deadline = None
        for view in [v for v in self.view_changes if v <= nv.view]:
            del self.view_changes[view]
        if plan.stable_seq > self.stable_seq:
            self._make_stable(plan.stable_seq, plan.stable_root, plan.stable_proof)
        self.inflight.clear()
        records: list[Record] = [] if primary else [ViewRecord(nv.view, True)]
        prepares: list[Prepare] = []
        for pp in nv.pre_prepares:
            if pp.seq <= self.stable_seq:
                continue
            slot = self.log.slot(pp.seq)
            slot.pre_prepares[nv.view] = pp
            slot.remember_batch(pp.digest, pp.batch)
            for request in pp.batch:
                self.inflight[request.request_id] = pp.seq
            if primary:
                known = self.own_votes.setdefault(("PrePrepare", nv.view, pp.seq), pp.digest)
                invariant(known == pp.digest, f"new primary signed two batches for {pp.seq}")
                continue
            key: VoteKey = ("Prepare", nv.view, pp.seq)
            if not self._may_vote(key, pp.digest):
                continue
            prepare = self._signed(Prepare(nv.view, pp.seq, pp.digest, self.me))
            self.own_votes[key] = pp.digest
            self._store_own(prepare)
            prepares.append(prepare)
            records.append(VoteRecord(prepare))
        self.next_seq = max(plan.max_seq, self.stable_seq) + 1
        if records:
            self._out.append(Persist(tuple(records)))
        self._out.extend(Broadcast(p) for p in prepares)
        for _, slot in sorted(self.log.slots.items()):
            self._advance(slot)
        self._propose()


def _vote_key(message: PrePrepare | Prepare | Commit) -> VoteKey:
    return (type(message).__name__, message.view, message.seq)
