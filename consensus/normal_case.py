"""The normal case: client requests, PRE-PREPARE, PREPARE, COMMIT, execution.

Each handler validates cheaply first (membership, view, watermarks, exact
duplicates), then checks the signature, then changes state.
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.actions import Execute, Send
from consensus.batch_fetch import needed_proposal
from consensus.bounds import batch_bytes
from consensus.log import Slot
from consensus.messages import (
    MAX_REQUEST_ID_BYTES,
    Batch,
    BatchReply,
    Commit,
    ForwardedRequests,
    Prepare,
    PrePrepare,
    ProposalMetadata,
    Request,
    proposal_digest,
)
from consensus.persistence import BatchRecord, PreparedRecord, Record
from consensus.quorum import primary_of
from consensus.replica_state import ReplicaState, VoteKey
from consensus.retransmission import help_lagging_peer


def on_requests(state: ReplicaState, requests: Iterable[Request]) -> None:
    if not isinstance(requests, tuple | list):
        state.ignore("malformed_request")
        return
    max_bytes = state.config.max_request_bytes
    request_id_of = state.request_id_of
    committed, pending = state.committed_ids, state.pending
    arrival_ticks, now_ticks = state.arrival_ticks, state.now_ticks
    for request in requests:
        if (
            not isinstance(request, Request)
            or type(request.request_id) is not bytes
            or type(request.payload) is not bytes
            or len(request.payload) > max_bytes
            or not 0 < len(request.request_id) <= MAX_REQUEST_ID_BYTES
            or (request_id_of is not None and request.request_id != request_id_of(request.payload))
        ):
            state.ignore("malformed_request")
        elif request.request_id in committed or request.request_id in pending:
            state.ignore("duplicate_request")
        else:
            pending[request.request_id] = request
            arrival_ticks[request.request_id] = now_ticks
            state.may_propose = True
    propose(state)


def propose(state: ReplicaState) -> None:
    if (
        not state.is_primary
        or not state.view_active
        or state.state_transfer_target is not None
        or state.last_executed < state.stable_seq
    ):
        return
    state.next_seq = max(state.next_seq, state.stable_seq + 1)
    room = state.high_watermark - state.next_seq + 1
    cap = state.config.max_inflight_batches
    if cap is not None:
        # Proposals above ``last_executed`` are in flight; execution calls
        # ``propose`` again, and ``may_propose`` stays set while requests wait.
        room = min(room, cap - (state.next_seq - 1 - state.last_executed))
    if not state.may_propose or room <= 0:
        return
    # One pass over the pending requests, and only when something changed
    # (a request arrived, the window moved, a view started): scanning a deep
    # mempool on every message would dominate the core's cost.
    size = state.config.max_batch_size
    fresh: list[Request] = []
    for request_id, request in state.pending.items():
        if request_id not in state.inflight:
            fresh.append(request)
            if len(fresh) >= room * size:
                break
    cut = state.config.batch_cut_ticks
    # A short batch waits for its oldest request to age ``cut`` ticks;
    # ``may_propose`` stays set, and every tick calls ``propose`` again.
    if (
        cut
        and 0 < len(fresh) < size
        and state.now_ticks - state.arrival_ticks.get(fresh[0].request_id, 0) < cut
    ):
        return
    batches = split_batches(fresh, size, state.config.max_batch_bytes)
    if len(fresh) < room * size and len(batches) <= room:
        state.may_propose = False
    parent = state.parent_metadata(state.next_seq)
    for batch in batches[:room]:
        seq = state.next_seq
        state.next_seq += 1
        frozen_batch = tuple(batch)
        # Never behind the parent's time, or backups would refuse it.
        floor_ms = 0 if parent is None else parent.timestamp_ms
        metadata = ProposalMetadata(max(state.now_ms, floor_ms), state.view)
        parent = metadata
        digest = proposal_digest(frozen_batch, metadata, state.config.chain_id)
        for request in frozen_batch:
            state.inflight[request.request_id] = seq
        state.cast_votes([PrePrepare(state.view, seq, digest, frozen_batch, metadata, state.me)])


def split_batches(requests: list[Request], size: int, max_bytes: int) -> list[list[Request]]:
    """Cut ``requests``, in order, into batches of at most ``size`` requests
    and ``max_bytes`` (``bounds.batch_bytes``), so every PRE-PREPARE fits the wire."""
    batches: list[list[Request]] = []
    current: list[Request] = []
    current_bytes = 0
    for request in requests:
        cost = batch_bytes((request,))
        if current and (len(current) >= size or current_bytes + cost > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(request)
        current_bytes += cost
    if current:
        batches.append(current)
    return batches


def batch_problem(state: ReplicaState, batch: Batch) -> str | None:
    if not batch:
        return "empty batch outside a new-view"
    if len(batch) > state.config.max_batch_size:
        return "batch too large"
    if batch_bytes(batch) > state.config.max_batch_bytes:
        return "batch over max_batch_bytes"
    ids = {r.request_id for r in batch}
    if len(ids) != len(batch):
        return "batch repeats a request"
    max_bytes = state.config.max_request_bytes
    request_id_of = state.request_id_of
    pending = state.pending
    for r in batch:
        if len(r.payload) > max_bytes or not 0 < len(r.request_id) <= MAX_REQUEST_ID_BYTES:
            return "malformed request in batch"
        if request_id_of is None:
            continue
        # ``on_requests`` checked the id of every request in ``pending``: the same bytes
        # under the same id need no hash again (a backup holds most of a batch there).
        known = pending.get(r.request_id)
        if (known is None or known.payload != r.payload) and r.request_id != request_id_of(
            r.payload
        ):
            return "request id does not match its payload"
    return None


def on_pre_prepare(state: ReplicaState, peer: int, pp: PrePrepare) -> None:
    n = state.config.replica_count
    if state.view_too_far(peer, pp.view):
        return
    if pp.sender != primary_of(pp.view, n):
        state.fault("not_primary", peer, f"pre-prepare from {pp.sender} in view {pp.view}")
        return
    if not state.in_window(pp.seq):
        state.ignore("outside_watermarks")
        return
    voting = pp.view == state.view and state.view_active
    slot = state.log.get(pp.seq)
    known = slot.pre_prepares.get(pp.view) if slot is not None else None
    unvoted = voting and ("Prepare", pp.view, pp.seq) not in state.own_votes
    if known == pp and not unvoted:
        state.ignore("duplicate")
        return
    if known != pp:
        if not state.authentic(pp):
            state.fault("bad_signature", peer, "pre-prepare")
            return
        if pp.digest != proposal_digest(pp.batch, pp.metadata, state.config.chain_id):
            state.fault("digest_mismatch", peer, f"pre-prepare seq {pp.seq}")
            return
        problem = batch_problem(state, pp.batch)
        if problem is not None:
            state.fault("invalid_batch", peer, problem)
            return
    if known is not None and known.digest != pp.digest:
        # The primary signed both, so blame it, not the relay; still keep the
        # batch, since a commit certificate may name this digest.
        state.fault("equivocation", pp.sender, f"two pre-prepares for ({pp.view}, {pp.seq})")
        slot = state.log.slot(pp.seq)
        slot.keep_spare(pp.view, pp.digest, pp.batch, pp.metadata)
        advance(state, slot)
        return
    if unvoted and not reissued(state, pp):
        problem = proposal_problem(state, pp)
        if problem is not None:
            state.fault("bad_proposal", pp.sender, f"seq {pp.seq}: {problem}")
            state.refused_proposals.add(pp.seq)
            return
    if voting:
        for request in pp.batch:
            at = state.inflight.get(request.request_id)
            if request.request_id in state.committed_ids or (at is not None and at != pp.seq):
                state.fault("duplicate_request", peer, f"request repeated at seq {pp.seq}")
                return
    slot = state.log.slot(pp.seq)
    if not voting:
        # Not ours to vote on (another view, or waiting for NEW-VIEW); kept
        # (within a cap) so a commit certificate of that view can be executed,
        # and voted on if it is retransmitted once we run that view.
        slot.park_pre_prepare(pp)
        state.ignore("future_view" if pp.view > state.view else "stale_view")
        advance(state, slot)
        return
    slot.pre_prepares[pp.view] = pp
    slot.keep_needed(pp.digest, pp.batch, pp.metadata)  # the one we vote for
    for request in pp.batch:
        state.inflight[request.request_id] = pp.seq
    key: VoteKey = ("Prepare", pp.view, pp.seq)
    if state.may_vote(key, pp.digest):
        state.cast_votes([Prepare(pp.view, pp.seq, pp.digest, state.me)])
    advance(state, slot)


def reissued(state: ReplicaState, pp: PrePrepare) -> bool:
    """Whether ``pp`` lies in the range the NEW-VIEW of its view re-issued:
    such batches were prepared in an earlier view and keep their metadata."""
    nv = state.new_view_message
    if nv is None or nv.view != pp.view or not nv.pre_prepares:
        return False
    return pp.seq <= nv.pre_prepares[-1].seq


def proposal_problem(state: ReplicaState, pp: PrePrepare) -> str | None:
    """Why a backup must not prepare a fresh proposal's metadata, or None.

    The neighbour on either side is checked: a primary that sends seq s+1
    before seq s is caught when seq s arrives.
    """
    metadata = pp.metadata
    if metadata.proposed_view != pp.view:
        return f"a fresh proposal in view {pp.view} claims view {metadata.proposed_view}"
    validate = state.validate_proposal
    problem = validate(metadata, state.parent_metadata(pp.seq), state.now_ms)
    if problem is not None:
        return problem
    child_slot = state.log.get(pp.seq + 1)
    child = None if child_slot is None else child_slot.known_metadata(state.view)
    if child is not None and validate(child, metadata, state.now_ms) is not None:
        return f"seq {pp.seq + 1} already carries an earlier timestamp"
    return None


def on_prepare(state: ReplicaState, peer: int, prepare: Prepare) -> None:
    n = state.config.replica_count
    if state.view_too_far(peer, prepare.view):
        return
    if prepare.sender == primary_of(prepare.view, n):
        state.fault("prepare_from_primary", peer, f"view {prepare.view}")
        return
    if not state.in_window(prepare.seq):
        state.ignore("outside_watermarks")
        return
    if prepare.view != state.view or not state.view_active:
        state.ignore("future_view" if prepare.view > state.view else "stale_view")
        if prepare.view < state.view and peer == prepare.sender:
            help_lagging_peer(state, prepare, prepare.view + 1)
        return
    slot = state.log.slot(prepare.seq)
    known = slot.prepares.get(prepare.view, {}).get(prepare.sender)
    if known == prepare:
        state.ignore("duplicate")
        return
    if not state.authentic(prepare):
        state.fault("bad_signature", peer, "prepare")
        return
    if known is not None:
        detail = f"two prepares for ({prepare.view}, {prepare.seq})"
        state.fault("conflicting_vote", prepare.sender, detail)
        return
    slot.prepares.setdefault(prepare.view, {})[prepare.sender] = prepare
    advance(state, slot)


def on_commit(state: ReplicaState, peer: int, commit: Commit) -> None:
    if state.view_too_far(peer, commit.view):
        return
    if not state.in_window(commit.seq):
        state.ignore("outside_watermarks")
        return
    slot = state.log.slot(commit.seq)
    known = slot.commits.get(commit.view, {}).get(commit.sender, {})
    if known.get(commit.digest) == commit:
        state.ignore("duplicate")
        return
    if not state.authentic(commit):
        state.fault("bad_signature", peer, "commit")
        return
    if known:
        detail = f"two commits for ({commit.view}, {commit.seq})"
        state.fault("conflicting_vote", commit.sender, detail)
    # Commits of any view count: 2f+1 of them prove the batch committed, which
    # lets a replica stuck in a view change still follow the chain.
    if not slot.add_commit(commit):
        return
    advance(state, slot)


def on_batch_reply(state: ReplicaState, peer: int, reply: BatchReply) -> None:
    """A batch we fetched by digest (``consensus.batch_fetch``) arrived."""
    slot = state.log.get(reply.seq)
    if slot is None or reply.digest not in slot.wanted:
        state.ignore("unrequested_batch")
        return
    if not state.authentic(reply):
        state.fault("bad_signature", peer, "batch-reply")
        return
    if proposal_digest(reply.batch, reply.metadata, state.config.chain_id) != reply.digest:
        state.fault("digest_mismatch", reply.sender, f"batch reply for seq {reply.seq}")
        return
    slot.keep_needed(reply.digest, reply.batch, reply.metadata)
    advance(state, slot)


def on_forwarded_requests(state: ReplicaState, peer: int, fr: ForwardedRequests) -> None:
    """The primary takes requests a backup relays like client requests."""
    if state.view_too_far(peer, fr.view):
        return
    if fr.view != state.view or not state.view_active or not state.is_primary:
        state.ignore("stale_forward")
        return
    if len(fr.requests) > state.config.max_batch_size:
        state.fault("invalid_forward", peer, f"{len(fr.requests)} requests in one relay")
        return
    if batch_bytes(fr.requests) > state.config.max_batch_bytes:
        state.fault("invalid_forward", peer, "relay over max_batch_bytes")
        return
    if not state.authentic(fr):
        state.fault("bad_signature", peer, "forwarded requests")
        return
    on_requests(state, fr.requests)


def relay_waiting_requests(state: ReplicaState) -> None:
    """A backup sends the primary the oldest pending requests that are not in
    flight and already were at the previous round (one retransmission
    interval ago): at most one batch's worth per interval, each request once
    per view. The scan is bounded too: it looks at most at a few batches'
    worth of the oldest pending requests."""
    if not state.view_active or state.is_primary:
        return
    size = state.config.max_batch_size
    pending, inflight = state.pending, state.inflight
    state.relayed = {r for r in state.relayed if r in pending}
    candidates: set[bytes] = set()
    chosen: list[Request] = []
    chosen_bytes = 0  # bounded like a batch, so the relay fits the wire
    for scanned, request_id in enumerate(pending):
        if scanned >= 4 * size or len(candidates) >= size:
            break
        if request_id in inflight or request_id in state.relayed:
            continue
        if request_id in state.relay_candidates:
            request = pending[request_id]
            cost = batch_bytes((request,))
            if chosen_bytes + cost > state.config.max_batch_bytes:
                break
            chosen.append(request)
            chosen_bytes += cost
            state.relayed.add(request_id)
        else:
            candidates.add(request_id)
    state.relay_candidates = candidates
    if chosen:
        relay = state.signed(ForwardedRequests(state.view, tuple(chosen), state.me))
        state.outbox.append(Send(state.primary, relay))


def advance(state: ReplicaState, slot: Slot) -> None:
    """Move a slot forward: prepared -> send COMMIT; commit quorum -> execute."""
    if state.view_active and slot.seq > state.stable_seq:
        key: VoteKey = ("Commit", state.view, slot.seq)
        if key not in state.own_votes:
            cert = slot.prepared_certificate(state.view, 2 * state.config.faulty)
            if cert is not None:
                digest = cert.pre_prepare.digest
                if slot.prepared is None or slot.prepared.pre_prepare.view <= state.view:
                    slot.prepared = cert
                if state.may_vote(key, digest):
                    commit = Commit(state.view, slot.seq, digest, state.me)
                    records: list[Record] = [PreparedRecord(cert)]
                    # Certificates carry digests only: keep the batch durable
                    # too, or a NEW-VIEW could re-issue a batch every replica
                    # that prepared it lost in a crash.
                    proposal = slot.proposal_for(digest)
                    if proposal is not None:
                        records.append(BatchRecord(slot.seq, digest, *proposal))
                    state.cast_votes([commit], records_before=tuple(records))
    if slot.committed is None and slot.seq > state.last_executed:
        slot.committed = slot.commit_certificate(state.config.quorum)
    execute_ready(state)


def execute_ready(state: ReplicaState) -> None:
    progressed = False
    while state.state_transfer_target is None:
        seq = state.last_executed + 1
        slot = state.log.get(seq)
        if slot is None or slot.committed is None:
            break
        cert = slot.committed
        proposal = needed_proposal(state, slot, cert.digest)
        if proposal is None:
            break  # fetched by digest; executed when the reply arrives
        batch, metadata = proposal
        state.outbox.append(Execute(seq, batch, metadata, cert))
        state.last_executed = seq
        state.last_executed_metadata = metadata
        progressed = True
        ids = [r.request_id for r in batch]
        newest_arrival = state.forget_requests(ids)
        if metadata.proposed_view == state.view and state.view_active:
            # Only this view's primary ordered it: re-issued batches are not its doing.
            state.newest_served_arrival_ticks = max(
                state.newest_served_arrival_ticks, newest_arrival
            )
        state.remember_committed(ids, seq)
    if progressed:
        state.refused_proposals = {s for s in state.refused_proposals if s > state.last_executed}
        if state.view_active:
            state.backoff_exponent = 0
        # The progress timer restarts; the request deadline moved only if a
        # request we waited for was served (``ReplicaState.request_deadline``).
        state.progress_deadline = None
        propose(state)
