"""Restart: rebuild a replica's state from its durable records.

Every vote it ever signed (and synced) comes back into ``own_votes``, so the
restarted replica refuses to sign anything that conflicts with what it said
before the crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus.checkpoint_handling import garbage_collect
from consensus.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
)
from consensus.persistence import (
    PreparedRecord,
    Record,
    StableCheckpointRecord,
    ViewRecord,
    VoteRecord,
)
from consensus.replica_state import ReplicaState, vote_key


def rebuild(
    state: ReplicaState,
    records: Sequence[Record],
    executed_seq: int,
    state_root: bytes,
    committed_request_ids: Iterable[bytes],
) -> None:
    """Replay ``records`` into a fresh ``state`` and line it up with the application."""
    config = state.config
    for record in records:
        replay(state, record)
    state.last_executed = executed_seq
    state.own_roots[executed_seq] = state_root
    state.remember_committed(committed_request_ids, executed_seq)
    garbage_collect(state)
    if executed_seq < state.stable_seq:
        state.state_transfer_target = state.stable_seq
    elif executed_seq > state.stable_seq and executed_seq % config.checkpoint_interval == 0:
        # Re-sign our checkpoint: peers may need it to make this height stable.
        checkpoint = state.signed(Checkpoint(executed_seq, state_root, state.me))
        state.own_checkpoint = checkpoint
        state.checkpoints.add(checkpoint)
    for (kind, view, seq), _ in state.own_votes.items():
        if kind == "PrePrepare" and view == state.view:
            state.next_seq = max(state.next_seq, seq + 1)
    state.next_seq = max(state.next_seq, state.stable_seq + 1)
    for seq in list(state.log.slots):
        slot = state.log.slots[seq]
        pp = slot.pre_prepares.get(state.view)
        if pp is not None and state.view_active:
            for request in pp.batch:
                state.inflight[request.request_id] = seq


def replay(state: ReplicaState, record: Record) -> None:
    match record:
        case ViewRecord(view=view, active=active):
            if (view, active) >= (state.view, state.view_active) or view > state.view:
                state.view, state.view_active = view, active
            if active:
                for old in [v for v in state.own_view_changes if v <= view]:
                    del state.own_view_changes[old]
        case VoteRecord(message=message):
            replay_vote(state, message)
        case PreparedRecord(certificate=cert):
            slot = state.log.slot(cert.pre_prepare.seq)
            if slot.prepared is None or slot.prepared.pre_prepare.view < cert.pre_prepare.view:
                slot.prepared = cert
            pp = cert.pre_prepare
            slot.remember_batch(pp.digest, pp.batch, pp.metadata)
        case StableCheckpointRecord(seq=seq, state_root=root, proof=proof):
            if seq > state.stable_seq:
                state.stable_seq, state.stable_root, state.stable_proof = seq, root, proof


def replay_vote(state: ReplicaState, message: Message) -> None:
    match message:
        case PrePrepare() | Prepare() | Commit():
            state.own_votes[vote_key(message)] = message.digest
            state.store_own(message)
        case ViewChange():
            state.view_changes.setdefault(message.new_view, {})[state.me] = message
            state.own_view_changes[message.new_view] = message
        case NewView():
            if state.new_view_message is None or message.view > state.new_view_message.view:
                state.new_view_message = message
        case Checkpoint():
            pass
