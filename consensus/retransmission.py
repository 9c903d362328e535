"""What a replica resends: the network drops messages, and peers fall behind."""

from __future__ import annotations

from consensus.actions import Broadcast, Send
from consensus.batch_fetch import refetch_missing
from consensus.messages import Message, Prepare, Status, ViewChange
from consensus.replica_state import ReplicaState

MAX_RESENT_VIEW_CHANGES = 4
"""How many of our latest VIEW-CHANGEs (for consecutive failed views) we keep resending."""


def retransmit(state: ReplicaState) -> None:
    """Resend what peers may have lost: the network drops messages."""
    if not state.view_active:
        recent = sorted(state.own_view_changes.items())[-MAX_RESENT_VIEW_CHANGES:]
        state.outbox.extend(Broadcast(vc) for _, vc in recent)
    else:
        for seq, slot in sorted(state.log.slots.items()):
            if seq <= state.last_executed:
                continue  # a peer that lacks it says so in its STATUS
            mine: list[Message] = []
            # Backups relay the primary's pre-prepare too: a replica that
            # missed it (or got an equivocating one) needs the batch.
            pp = slot.pre_prepares.get(state.view)
            if pp is not None:
                mine.append(pp)
            prepare = slot.prepares.get(state.view, {}).get(state.me)
            if prepare is not None:
                mine.append(prepare)
            if slot.committed is not None:
                # Relay the whole certificate: a replica outside this view
                # (or one a byzantine peer lied to) can still execute.
                mine.extend(slot.committed.commits)
            else:
                commit = slot.own_commit(state.view, state.me)
                if commit is not None:
                    mine.append(commit)
            state.outbox.extend(Broadcast(m) for m in mine)
    # Also while changing views: peers that executed more send us what we lack.
    status = Status(state.view, state.last_executed, state.me)
    state.outbox.append(Broadcast(state.signed(status)))
    refetch_missing(state)
    # The stable proof is relayed whole: a lagging or restarted replica learns
    # from any one honest peer that it must fetch state.
    state.outbox.extend(Broadcast(c) for c in state.stable_proof)
    if state.own_checkpoint is not None and state.own_checkpoint.seq > state.stable_seq:
        state.outbox.append(Broadcast(state.own_checkpoint))


def help_lagging_peer(
    state: ReplicaState, asking: Prepare | ViewChange | Status, needs_view: int
) -> None:
    """A peer is stuck below a view we reached: forward the latest NEW-VIEW we
    ran (even if we have since moved on) so it can enter that view and then
    follow us, instead of waiting for a quorum that will never form.

    ``asking`` is authenticated first (after the cheap checks and the rate
    limit, so a flood costs one signature check per peer and interval): a
    forged message in a victim's name must not make us send it a NEW-VIEW."""
    nv = state.new_view_message
    peer = asking.sender
    if nv is None or nv.view < needs_view or not 0 <= peer < state.config.replica_count:
        return
    last = state.new_view_replies.get(peer)
    if last is not None and state.now_ticks - last < state.config.retransmit_interval_ticks:
        return
    if not state.authentic(asking):
        state.fault("bad_signature", peer, "message asking for a new-view")
        return
    state.new_view_replies[peer] = state.now_ticks
    state.outbox.append(Send(peer, nv))


def on_status(state: ReplicaState, peer: int, status: Status) -> None:
    """A peer executed less than we did: send it the commit certificates of the
    heights it lacks (digests only; it fetches a missing batch by digest). At
    most once per peer and retransmission interval, and only after the STATUS
    is authenticated, so a forgery cannot aim our replies at a victim."""
    if status.view < state.view:
        # An idle peer in an older view sends no VIEW-CHANGE or PREPARE that
        # would ask for our NEW-VIEW, and refuses our COMMITs once we are more
        # than view_bound ahead: only the NEW-VIEW brings it back (sim seed 3427).
        help_lagging_peer(state, status, status.view + 1)
    start = max(status.last_executed, state.stable_seq) + 1
    if start > state.last_executed:
        state.ignore("status_not_behind")
        return
    last = state.status_replies.get(status.sender)
    if last is not None and state.now_ticks - last < state.config.retransmit_interval_ticks:
        state.ignore("status_rate_limited")
        return
    if not state.authentic(status):
        state.fault("bad_signature", peer, "status")
        return
    state.status_replies[status.sender] = state.now_ticks
    for seq in range(start, state.last_executed + 1):
        slot = state.log.get(seq)
        if slot is not None and slot.committed is not None:
            state.outbox.extend(Send(status.sender, c) for c in slot.committed.commits)
