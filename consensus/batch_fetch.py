"""Fetching a needed batch by digest (issue 8 §1.1, and PBFT §4.4's digests).

A replica may know that a batch is needed (a commit quorum names its digest)
without holding it: the pre-prepare was lost, or was crowded out as junk. It
then asks its peers with a FETCH-BATCH for (seq, digest): at once, and again
every retransmission interval until the batch arrives. Any peer that holds the
batch answers with a BATCH-REPLY, which the requester accepts only if the
batch and metadata have the digest it asked for (the unit is the pair: the
digest covers both). A null batch re-issued by a NEW-VIEW is known to every
replica that verified the NEW-VIEW (and kept across a restart).

Both messages are signed. A request is authenticated before it is answered, so
a forged request cannot aim our replies at a victim, and each peer gets at most
``watermark_window`` replies per retransmission interval (a whole window).
"""

from __future__ import annotations

from consensus.actions import Broadcast, Send
from consensus.log import Proposal, Slot
from consensus.messages import BatchReply, FetchBatch
from consensus.replica_state import ReplicaState


def needed_proposal(state: ReplicaState, slot: Slot, digest: bytes) -> Proposal | None:
    """The (batch, metadata) ``digest`` names, now marked needed; None (and
    fetched) if missing."""
    first_time = digest not in slot.wanted
    found = slot.need(digest)
    if found is None and first_time:
        ask_for_batch(state, slot.seq, digest)
    return found


def ask_for_batch(state: ReplicaState, seq: int, digest: bytes) -> None:
    state.outbox.append(Broadcast(state.signed(FetchBatch(seq, digest, state.me))))


def refetch_missing(state: ReplicaState) -> None:
    """Ask again for every batch still wanted (called every retransmission interval)."""
    for seq, slot in sorted(state.log.slots.items()):
        if seq <= state.last_executed:
            continue
        for digest in sorted(slot.wanted):
            ask_for_batch(state, seq, digest)


def on_fetch_batch(state: ReplicaState, peer: int, request: FetchBatch) -> None:
    slot = state.log.get(request.seq)
    proposal = slot.proposal_for(request.digest) if slot is not None else None
    if proposal is None:
        state.ignore("unknown_batch")
        return
    interval = state.now_ticks // state.config.retransmit_interval_ticks
    last_interval, count = state.batch_replies.get(request.sender, (interval, 0))
    if last_interval != interval:
        count = 0
    if count >= state.config.watermark_window:
        state.ignore("fetch_rate_limited")
        return
    if not state.authentic(request):
        state.fault("bad_signature", peer, "fetch-batch")
        return
    state.batch_replies[request.sender] = (interval, count + 1)
    batch, metadata = proposal
    reply = state.signed(BatchReply(request.seq, request.digest, batch, metadata, state.me))
    state.outbox.append(Send(request.sender, reply))
