"""Restart: rebuild a replica's state from its durable records.

Every vote it ever signed (and synced) comes back into ``own_votes``, so the
restarted replica refuses to sign anything that conflicts with what it said
before the crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus.checkpoint_handling import garbage_collect
from consensus.messages import (
    NULL_BATCH,
    Batch,
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    PrePrepareHeader,
    ViewChange,
    proposal_digest,
)
from consensus.persistence import (
    BatchRecord,
    NewViewRecord,
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
        case NewViewRecord(new_view=nv):
            replay_new_view(state, nv)
        case BatchRecord(seq=seq, digest=digest, batch=batch, metadata=metadata):
            state.log.slot(seq).keep_needed(digest, batch, metadata)
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
            replay_new_view(state, message)
        case Checkpoint():
            pass


def replay_new_view(state: ReplicaState, nv: NewView) -> None:
    """Back to the latest NEW-VIEW we ran, with its re-issued pre-prepares in
    the log (null batches are recomputed; a prepared batch is held if our own
    records carry it, else it stays wanted and is fetched by digest on the next
    retransmission). Garbage collection drops those below the stable checkpoint
    afterwards. Our own NEW-VIEW's pre-prepares are votes we must not contradict."""
    if state.new_view_message is not None and nv.view <= state.new_view_message.view:
        return
    state.new_view_message = nv
    for header in nv.pre_prepares:
        slot = state.log.slot(header.seq)
        slot.adopt_header(header, null_batch_of(header, state.config.chain_id))
        if nv.sender == state.me:
            state.own_votes[("PrePrepare", nv.view, header.seq)] = header.digest


def null_batch_of(header: PrePrepareHeader, chain_id: bytes) -> Batch | None:
    """The null batch if ``header`` names it (a gap a NEW-VIEW filled), else None."""
    null = proposal_digest(NULL_BATCH, header.metadata, chain_id)
    return NULL_BATCH if header.digest == null else None
