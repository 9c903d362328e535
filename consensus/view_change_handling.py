"""View change as the replica runs it: VIEW-CHANGE, the join rule, NEW-VIEW.

The pure rules (validating a VIEW-CHANGE, planning and recomputing a NEW-VIEW)
are in ``consensus.view_change``; this module holds what they do to a replica.
"""

from __future__ import annotations

from consensus.actions import Broadcast, Persist
from consensus.batch_fetch import ask_for_batch
from consensus.checkpoint_handling import make_stable
from consensus.invariants import invariant
from consensus.messages import NewView, Prepare, PrePrepareHeader, ViewChange
from consensus.normal_case import advance, propose
from consensus.persistence import NewViewRecord, Record, ViewRecord, VoteRecord
from consensus.replica_state import ReplicaState, VoteKey
from consensus.retransmission import help_lagging_peer
from consensus.view_change import (
    NewViewPlan,
    new_view_problem,
    plan_new_view,
    view_change_problem,
)


def start_view_change(state: ReplicaState, new_view: int) -> None:
    invariant(new_view > state.view, f"view change from {state.view} back to {new_view}")
    state.view = new_view
    state.view_active = False
    state.timer_deadline_ticks = None
    state.inflight.clear()
    state.refused_proposals.clear()
    state.relayed.clear()
    state.relay_candidates.clear()
    state.progress_deadline = None
    state.may_propose = True
    state.view_changes_started += 1
    certs = tuple(
        c for c in state.log.prepared_certificates() if c.pre_prepare.seq > state.stable_seq
    )
    vc = state.signed(
        ViewChange(
            new_view, state.stable_seq, state.stable_root, state.stable_proof, certs, state.me
        )
    )
    state.own_view_changes[new_view] = vc
    for view in [v for v in state.view_changes if v < new_view]:
        del state.view_changes[view]
    state.view_changes.setdefault(new_view, {})[state.me] = vc
    state.outbox.append(Persist((ViewRecord(new_view, False), VoteRecord(vc))))
    state.outbox.append(Broadcast(vc))
    try_new_view(state)


def on_view_change(state: ReplicaState, peer: int, vc: ViewChange) -> None:
    if state.view_too_far(peer, vc.new_view):
        return
    if vc.new_view < state.view or (vc.new_view == state.view and state.view_active):
        state.ignore("stale_view_change")
        help_lagging_peer(state, vc, vc.new_view)
        return
    known = state.view_changes.get(vc.new_view, {}).get(vc.sender)
    if known == vc:
        state.ignore("duplicate")
        return
    held = [v for v, by_sender in state.view_changes.items() if vc.sender in by_sender]
    if vc.new_view != state.view and vc.new_view < max(held, default=-1):
        state.ignore("superseded_view_change")
        return
    if not state.authentic(vc):
        state.fault("bad_signature", peer, "view-change")
        return
    # A conflict is proven by the outer signature alone: no need to validate
    # the certificates inside (issue 8 §1.7b).
    if known is not None:
        detail = f"two view-changes to {vc.new_view}"
        state.fault("conflicting_view_change", vc.sender, detail)
        return
    problem = view_change_problem(vc, state.config, state.verify)
    if problem is not None:
        state.fault("invalid_view_change", peer, problem)
        return
    keep_view_change(state, vc, held)
    if not maybe_join(state):
        try_new_view(state)


def keep_view_change(state: ReplicaState, vc: ViewChange, held: list[int]) -> None:
    """Store ``vc``, keeping per sender only its latest VIEW-CHANGE and the one
    for the view being assembled (issue 8 §1.7b): so at most two per sender,
    each within the wire bound ``consensus.bounds`` proves for the config."""
    state.view_changes.setdefault(vc.new_view, {})[vc.sender] = vc
    for view in held:
        if view not in (state.view, vc.new_view) and view < vc.new_view:
            by_sender = state.view_changes[view]
            del by_sender[vc.sender]
            if not by_sender:
                del state.view_changes[view]


def maybe_join(state: ReplicaState) -> bool:
    """PBFT's join rule: f+1 replicas asking for views above ours include an honest one."""
    highest: dict[int, int] = {}
    for view, by_sender in state.view_changes.items():
        if view > state.view:
            for sender in by_sender:
                highest[sender] = max(highest.get(sender, 0), view)
    if len(highest) < state.config.weak_quorum:
        return False
    target = sorted(highest.values(), reverse=True)[state.config.weak_quorum - 1]
    if target <= state.view:
        return False
    start_view_change(state, target)
    return True


def try_new_view(state: ReplicaState) -> None:
    if state.view_active or not state.is_primary:
        return
    vcs = state.view_changes.get(state.view, {})
    if len(vcs) < state.config.quorum:
        return
    chosen = tuple(vc for _, vc in sorted(vcs.items())[: state.config.quorum])
    plan = plan_new_view(chosen, state.config)
    headers: list[PrePrepareHeader] = []
    for seq, digest, _, metadata in plan.proposals:
        key: VoteKey = ("PrePrepare", state.view, seq)
        invariant(key not in state.own_votes, f"new primary reuses seq {seq}")
        headers.append(state.signed(PrePrepareHeader(state.view, seq, digest, metadata, state.me)))
    nv = state.signed(NewView(state.view, chosen, tuple(headers), state.me))
    # The NEW-VIEW holds our re-issued pre-prepares: its record restores them.
    records: list[Record] = [ViewRecord(state.view, True), VoteRecord(nv)]
    state.outbox.append(Persist(tuple(records)))
    state.outbox.append(Broadcast(nv))
    enter_view(state, nv, plan)


def on_new_view(state: ReplicaState, peer: int, nv: NewView) -> None:
    # No view bound here: a NEW-VIEW proves itself with 2f+1 signed
    # VIEW-CHANGEs and is never stored unverified, so a replica that was cut
    # off for more than ``view_bound`` views can still rejoin (issue 8 §1.3).
    if nv.view < state.view or (nv.view == state.view and state.view_active):
        state.ignore("stale_new_view")
        return
    if not state.authentic(nv):
        state.fault("bad_signature", peer, "new-view")
        return
    problem, plan = new_view_problem(nv, state.config, state.verify)
    if problem is not None or plan is None:
        state.fault("invalid_new_view", peer, problem or "no plan")
        return
    enter_view(state, nv, plan)


def enter_view(state: ReplicaState, nv: NewView, plan: NewViewPlan) -> None:
    primary = state.me == nv.sender
    for view in [v for v in state.own_view_changes if v <= nv.view]:
        del state.own_view_changes[view]
    state.may_propose = True
    state.view = nv.view
    state.view_active = True
    state.view_since = state.now_ticks
    state.newest_served_arrival_ticks = -1  # the new primary answers for its own order
    state.new_view_message = nv
    state.timer_deadline_ticks = None
    state.progress_deadline = None
    state.relayed.clear()
    state.relay_candidates.clear()
    for view in [v for v in state.view_changes if v <= nv.view]:
        del state.view_changes[view]
    if plan.stable_seq > state.stable_seq:
        make_stable(state, plan.stable_seq, plan.stable_root, plan.stable_proof)
    state.inflight.clear()
    state.refused_proposals.clear()
    records: list[Record] = [] if primary else [ViewRecord(nv.view, True), NewViewRecord(nv)]
    prepares: list[Prepare] = []
    for pp, (_, _, plan_batch, _) in zip(nv.pre_prepares, plan.proposals, strict=True):
        if pp.seq <= state.stable_seq:
            continue
        slot = state.log.slot(pp.seq)
        batch = slot.adopt_header(pp, plan_batch)
        if batch is None:
            ask_for_batch(state, pp.seq, pp.digest)  # prepared elsewhere: fetch by digest
        for request in batch or ():
            state.inflight[request.request_id] = pp.seq
        if primary:
            known = state.own_votes.setdefault(("PrePrepare", nv.view, pp.seq), pp.digest)
            invariant(known == pp.digest, f"new primary signed two batches for {pp.seq}")
            continue
        key: VoteKey = ("Prepare", nv.view, pp.seq)
        if state.may_vote(key, pp.digest):
            prepares.append(Prepare(nv.view, pp.seq, pp.digest, state.me))
    state.next_seq = max(plan.max_seq, state.stable_seq) + 1
    # One write for the view record and every PREPARE, then the broadcasts.
    state.cast_votes(prepares, records_before=tuple(records))
    for _, slot in sorted(state.log.slots.items()):
        advance(state, slot)
    propose(state)
