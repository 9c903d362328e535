"""The PBFT replica: one deterministic state machine, ``step(event) -> actions``.

``Replica`` is the replica's state (``consensus.replica_state``) plus the entry
points: ``step`` routes each event to the handler module for its concern, and
``restore`` rebuilds a replica after a crash. The handlers:

- ``normal_case``: requests, PRE-PREPARE, PREPARE, COMMIT, execution
- ``checkpoint_handling``: checkpoints, garbage collection, state transfer
- ``view_change_handling``: VIEW-CHANGE, the join rule, NEW-VIEW
- ``timers``: ticks, the view-change timer and its back-off
- ``retransmission``: what is resent to peers that lost messages
- ``restart``: replaying durable records

Peer faults are counted in ``fault_counts`` and reported, never raised; benign
drops (late or early messages) are counted in ``ignored_counts``. A broken
local invariant raises ``InvariantViolation``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus.actions import Action
from consensus.certificate import Verify
from consensus.checkpoint_handling import (
    on_checkpoint,
    on_executed,
    on_state_transfer_completed,
)
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
from consensus.messages import (
    MAX_REQUEST_ID_BYTES,
    Checkpoint,
    Commit,
    ForwardedRequests,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
)
from consensus.normal_case import (
    on_commit,
    on_forwarded_requests,
    on_pre_prepare,
    on_prepare,
    on_requests,
)
from consensus.persistence import Record
from consensus.proposal import ValidateProposal, monotonic_timestamps
from consensus.replica_state import (
    ReplicaState,
    RequestIdOf,
    Sign,
    VoteKey,
)
from consensus.restart import rebuild
from consensus.retransmission import MAX_RESENT_VIEW_CHANGES
from consensus.shape import shape_problem
from consensus.timers import on_tick, refresh_timer
from consensus.view_change_handling import on_new_view, on_view_change

__all__ = [
    "MAX_REQUEST_ID_BYTES",
    "MAX_RESENT_VIEW_CHANGES",
    "Replica",
    "RequestIdOf",
    "Sign",
    "ValidateProposal",
    "VoteKey",
]


class Replica(ReplicaState):
    """One replica. Feed it events with ``step``; rebuild it with ``restore``."""

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
        request_id_of: RequestIdOf | None = None,
        validate_proposal: ValidateProposal = monotonic_timestamps,
    ) -> Replica:
        """Rebuild a replica from its durable records and the application's height.

        ``committed_request_ids``: the request ids of the application's last
        ``config.request_id_window_heights`` blocks (older ones are not needed).

        Every vote it ever signed (and synced) is back in ``own_votes``, so it
        refuses to sign anything that conflicts with what it said before.
        """
        replica = cls(
            config,
            sign,
            verify,
            request_id_of=request_id_of,
            validate_proposal=validate_proposal,
        )
        rebuild(replica, records, executed_seq, state_root, committed_request_ids)
        return replica

    def step(self, event: Event) -> list[Action]:
        """Feed one event; return what the runtime must do, in order."""
        if self.stopped:
            return []
        self.outbox = []
        match event:
            case RequestSubmitted(request=request):
                on_requests(self, (request,))
            case ClientBatchReady(requests=requests):
                on_requests(self, requests)
            case MessageReceived(sender=peer, message=message):
                self._on_message(peer, message)
            case Tick(now_ms=now_ms):
                on_tick(self, now_ms)
            case Executed(seq=seq, state_root=root):
                on_executed(self, seq, root)
            case StateTransferCompleted(seq=seq, state_root=root, committed_request_ids=ids):
                on_state_transfer_completed(self, seq, root, ids)
        if not self.stopped:
            refresh_timer(self)
        out, self.outbox = self.outbox, []
        return out

    def _on_message(self, peer: int, message: Message) -> None:
        problem = shape_problem(message, signature_bytes=self.config.signature_bytes)
        if problem is not None:
            self.fault("malformed", peer, problem)
            return
        if not 0 <= message.sender < self.config.replica_count:
            self.fault("not_member", peer, f"sender {message.sender} is not a validator")
            return
        if message.sender == self.me:
            self.ignore("own_message")
            return
        match message:
            case PrePrepare():
                on_pre_prepare(self, peer, message)
            case Prepare():
                on_prepare(self, peer, message)
            case Commit():
                on_commit(self, peer, message)
            case Checkpoint():
                on_checkpoint(self, peer, message)
            case ViewChange():
                on_view_change(self, peer, message)
            case NewView():
                on_new_view(self, peer, message)
            case ForwardedRequests():
                on_forwarded_requests(self, peer, message)
