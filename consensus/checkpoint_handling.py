"""Checkpoints, the stable checkpoint, garbage collection and state transfer."""

from __future__ import annotations

from consensus.actions import Broadcast, Diverged, Persist, RequestStateTransfer
from consensus.checkpoint import CheckpointOutcome
from consensus.invariants import invariant
from consensus.messages import Checkpoint
from consensus.normal_case import execute_ready, propose
from consensus.persistence import StableCheckpointRecord
from consensus.replica_state import ReplicaState


def on_executed(state: ReplicaState, seq: int, root: bytes) -> None:
    invariant(0 < seq <= state.last_executed, f"executed {seq} was never handed out")
    if seq == state.stable_seq and root != state.stable_root:
        diverge(state, seq, root, state.stable_root)
        return
    if seq % state.config.checkpoint_interval or seq <= state.stable_seq:
        return
    state.own_roots[seq] = root
    checkpoint = state.signed(Checkpoint(seq, root, state.me))
    state.own_checkpoint = checkpoint
    state.checkpoints.add(checkpoint)
    state.outbox.append(Broadcast(checkpoint))
    check_stable(state, checkpoint)


def on_checkpoint(state: ReplicaState, peer: int, checkpoint: Checkpoint) -> None:
    if checkpoint.seq <= 0 or checkpoint.seq % state.config.checkpoint_interval:
        state.fault("bad_checkpoint", peer, f"checkpoint at {checkpoint.seq}")
        return
    if checkpoint.seq <= state.stable_seq:
        state.ignore("stale_checkpoint")
        return
    known = state.checkpoints.by_sender.get(checkpoint.sender, {}).get(checkpoint.seq)
    if known == checkpoint:
        state.ignore("duplicate")
        return
    if not state.authentic(checkpoint):
        state.fault("bad_signature", peer, "checkpoint")
        return
    if state.checkpoints.add(checkpoint) is CheckpointOutcome.CONFLICT:
        state.fault("conflicting_checkpoint", checkpoint.sender, f"two roots at {checkpoint.seq}")
        return
    check_stable(state, checkpoint)


def check_stable(state: ReplicaState, checkpoint: Checkpoint) -> None:
    proof = state.checkpoints.proof_for(checkpoint.seq, checkpoint.state_root)
    if proof is not None:
        make_stable(state, checkpoint.seq, checkpoint.state_root, proof)
        propose(state)  # the window moved up


def make_stable(state: ReplicaState, seq: int, root: bytes, proof: tuple[Checkpoint, ...]) -> None:
    if seq <= state.stable_seq:
        return
    own = state.own_roots.get(seq)
    if own is not None and own != root:
        diverge(state, seq, own, root)
        return
    state.stable_seq, state.stable_root, state.stable_proof = seq, root, proof
    state.outbox.append(Persist((StableCheckpointRecord(seq, root, proof),)))
    garbage_collect(state)
    if state.last_executed < seq:
        # Peers have dropped the log below ``seq``: only their state can help us.
        state.state_transfer_target = seq
        request_state_transfer(state)


def request_state_transfer(state: ReplicaState) -> None:
    peers = tuple(sorted(c.sender for c in state.stable_proof if c.sender != state.me))
    state.outbox.append(RequestStateTransfer(state.stable_seq, state.stable_root, peers))


def garbage_collect(state: ReplicaState) -> None:
    stable = state.stable_seq
    state.may_propose = True  # the window moved and in-flight requests may be freed
    state.log.garbage_collect(stable)
    state.checkpoints.garbage_collect(stable)
    for seq in [s for s in state.own_roots if s < stable]:
        del state.own_roots[seq]
    # Votes at or below the stable checkpoint can never be signed again: the
    # watermarks refuse those sequence numbers.
    for key in [k for k in state.own_votes if k[2] <= stable]:
        del state.own_votes[key]
    for request_id in [r for r, s in state.inflight.items() if s <= stable]:
        del state.inflight[request_id]


def on_state_transfer_completed(
    state: ReplicaState, seq: int, root: bytes, ids: tuple[bytes, ...]
) -> None:
    if seq <= state.last_executed:
        state.ignore("stale_state_transfer")
        return
    if seq == state.stable_seq and root != state.stable_root:
        diverge(state, seq, root, state.stable_root)
        return
    state.last_executed = seq
    if seq % state.config.checkpoint_interval == 0:
        state.own_roots[seq] = root
    state.may_propose = True
    state.remember_committed(ids, seq)
    for request_id in ids:
        state.forget_request(request_id)
    target = state.state_transfer_target
    if target is not None and seq >= target:
        state.state_transfer_target = None
    elif target is not None:
        request_state_transfer(state)
    state.progress_deadline = None
    execute_ready(state)
    propose(state)


def diverge(state: ReplicaState, seq: int, own: bytes, stable: bytes) -> None:
    state.outbox.append(Diverged(seq, own, stable))
    state.stopped = True
