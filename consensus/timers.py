"""Logical time: ticks drive retransmission and PBFT's view-change timer.

Safety never depends on these: they only decide when to resend and when to
give up on a view.
"""

from __future__ import annotations

from consensus.checkpoint_handling import request_state_transfer
from consensus.normal_case import propose, relay_waiting_requests
from consensus.replica_state import ReplicaState
from consensus.retransmission import retransmit
from consensus.view_change_handling import start_view_change


def on_tick(state: ReplicaState, now_ms: int) -> None:
    state.now_ticks += 1
    # A runtime clock that steps back must not pull our timestamps back.
    state.now_ms = max(state.now_ms, now_ms)
    if state.now_ticks % state.config.retransmit_interval_ticks == 0:
        retransmit(state)
        relay_waiting_requests(state)
        if state.state_transfer_target is not None:
            request_state_transfer(state)
    if state.timer_deadline is not None and state.now_ticks >= state.timer_deadline:
        state.timer_deadline = None
        state.backoff_exponent += 1
        start_view_change(state, state.view + 1)
        return
    propose(state)


def has_work(state: ReplicaState) -> bool:
    """A slot of this view waits to execute, or we refused a proposal."""
    if any(seq > state.last_executed for seq in state.refused_proposals):
        return True
    return any(
        seq > state.last_executed and state.view in slot.pre_prepares
        for seq, slot in state.log.slots.items()
    )


def refresh_timer(state: ReplicaState) -> None:
    """PBFT's timer. In a view it expires at the earlier of the oldest pending
    request's deadline and the progress timer (which runs while a slot waits
    and restarts on each execution). In a view change it runs once 2f+1
    view-changes for the target view are in (before that a lone replica waits
    instead of racing through views)."""
    if state.view_active:
        if not has_work(state):
            state.progress_deadline = None
        elif state.progress_deadline is None:
            state.progress_deadline = state.now_ticks + state.timeout_ticks()
        deadlines = [
            d for d in (state.progress_deadline, state.request_deadline()) if d is not None
        ]
        state.timer_deadline = min(deadlines, default=None)
    elif (
        state.timer_deadline is None
        and len(state.view_changes.get(state.view, {})) >= state.config.quorum
    ):
        state.timer_deadline = state.now_ticks + state.timeout_ticks()
