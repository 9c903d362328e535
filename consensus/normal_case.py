"""The normal case: client requests, PRE-PREPARE, PREPARE, COMMIT, execution.

Each handler validates cheaply first (membership, view, watermarks, exact
duplicates), then checks the signature, then changes state.
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.actions import Execute, Send
from consensus.log import Slot
from consensus.messages import (
    MAX_REQUEST_ID_BYTES,
    Batch,
    Commit,
    ForwardedRequests,
    Prepare,
    PrePrepare,
    ProposalMetadata,
    Request,
    proposal_digest,
)
from consensus.persistence import PreparedRecord
from consensus.quorum import primary_of
from consensus.replica_state import ReplicaState, VoteKey
from consensus.retransmission import help_lagging_peer


def on_requests(state: ReplicaState, requests: Iterable[Request]) -> None:
    if not isinstance(requests, tuple | list):
        state.ignore("malformed_request")
        return
    max_bytes = state.config.max_request_bytes
    request_id_of = state.request_id_of
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
        elif request.request_id in state.committed_ids or request.request_id in state.pending:
            state.ignore("duplicate_request")
        else:
            state.add_pending(request)
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
    if len(fresh) < room * size:
        state.may_propose = False
    parent = state.parent_metadata(state.next_seq)
    for first in range(0, len(fresh), size):
        batch = fresh[first : first + size]
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


def batch_problem(state: ReplicaState, batch: Batch) -> str | None:
    if not batch:
        return "empty batch outside a new-view"
    if len(batch) > state.config.max_batch_size:
        return "batch too large"
    ids = {r.request_id for r in batch}
    if len(ids) != len(batch):
        return "batch repeats a request"
    max_bytes = state.config.max_request_bytes
    request_id_of = state.request_id_of
    for r in batch:
        if len(r.payload) > max_bytes or not 0 < len(r.request_id) <= MAX_REQUEST_ID_BYTES:
            return "malformed request in batch"
        if request_id_of is not None and r.request_id != request_id_of(r.payload):
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
        slot.remember_batch(pp.digest, pp.batch, pp.metadata)
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
    slot.remember_batch(pp.digest, pp.batch, pp.metadata)
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
            help_lagging_peer(state, peer, prepare.view + 1)
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
    if not state.authentic(fr):
        state.fault("bad_signature", peer, "forwarded requests")
        return
    on_requests(state, fr.requests)


def relay_waiting_requests(state: ReplicaState) -> None:
    """A backup sends the primary requests that waited a retransmission interval
    without being proposed: at most one batch's worth per interval, each
    request once per view."""
    if not state.view_active or state.is_primary:
        return
    waited_since = state.now_ticks - state.config.retransmit_interval_ticks
    chosen: list[Request] = []
    for request_id, since in state.pending_since.items():
        if since > waited_since or len(chosen) >= state.config.max_batch_size:
            break
        if request_id not in state.inflight and request_id not in state.relayed:
            chosen.append(state.pending[request_id])
            state.relayed.add(request_id)
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
                    state.cast_votes([commit], records_before=(PreparedRecord(cert),))
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
        batch = slot.batches[cert.digest]
        metadata = slot.metadata[cert.digest]
        state.outbox.append(Execute(seq, batch, metadata, cert))
        state.last_executed = seq
        state.last_executed_metadata = metadata
        progressed = True
        for request in batch:
            state.forget_request(request.request_id)
        state.remember_committed((r.request_id for r in batch), seq)
    if progressed:
        state.refused_proposals = {s for s in state.refused_proposals if s > state.last_executed}
        if state.view_active:
            state.backoff_exponent = 0
        # Only the progress timer restarts: pending requests keep their
        # deadlines (``ReplicaState.request_deadline``).
        state.progress_deadline = None
        propose(state)
