"""The primary's batch cut (``batch_cut_ticks``): a batch short of ``max_batch_size``
leaves only once its oldest request has waited the cut; a full batch leaves at once,
and so does a short one whose requests waited for a free slot longer than the cut."""

from __future__ import annotations

import pytest

from consensus.actions import Action, Broadcast, Execute
from consensus.events import ClientBatchReady, MessageReceived, Tick
from consensus.messages import PrePrepare
from consensus.sim.fixtures import commit, make_replica, prepare, request


def _proposed(actions: list[Action]) -> list[tuple[int, list[bytes]]]:
    return [
        (a.message.seq, [r.request_id for r in a.message.batch])
        for a in actions
        if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare)
    ]


def test_a_short_batch_waits_for_its_oldest_request_to_age_the_cut() -> None:
    primary = make_replica(0, max_batch_size=4, batch_cut_ticks=2)
    assert _proposed(primary.step(ClientBatchReady((request(0),)))) == []
    assert _proposed(primary.step(Tick(0))) == []  # waited 1 tick of 2
    assert _proposed(primary.step(ClientBatchReady((request(1),)))) == []
    assert _proposed(primary.step(Tick(0))) == [(1, [b"req-0", b"req-1"])]


def test_a_full_batch_leaves_at_once_with_the_rest_behind_it() -> None:
    primary = make_replica(0, max_batch_size=3, batch_cut_ticks=100)
    actions = primary.step(ClientBatchReady(tuple(request(i) for i in range(4))))
    assert _proposed(actions) == [(1, [b"req-0", b"req-1", b"req-2"]), (2, [b"req-3"])]


def test_a_freed_slot_takes_requests_older_than_the_cut_at_once() -> None:
    """At saturation requests wait for room, not for the cut: when seq 1 executes,
    the requests that waited meanwhile go in the same step."""
    primary = make_replica(0, max_batch_size=10, max_inflight_batches=1, batch_cut_ticks=1)
    primary.step(ClientBatchReady((request(0),)))
    assert _proposed(primary.step(Tick(0))) == [(1, [b"req-0"])]
    primary.step(ClientBatchReady((request(1), request(2))))
    assert _proposed(primary.step(Tick(0))) == []  # aged, but no room
    first = (request(0),)
    for sender in (1, 2):
        primary.step(MessageReceived(sender, prepare(0, 1, first, sender)))
    actions: list[Action] = []
    for sender in (1, 2):
        actions += primary.step(MessageReceived(sender, commit(0, 1, first, sender)))
    assert any(isinstance(a, Execute) and a.seq == 1 for a in actions)
    assert _proposed(actions) == [(2, [b"req-1", b"req-2"])]


def test_without_a_cut_a_lone_request_is_proposed_at_once() -> None:
    primary = make_replica(0, max_batch_size=4)
    assert _proposed(primary.step(ClientBatchReady((request(0),)))) == [(1, [b"req-0"])]


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_batch_cut_ticks_must_be_an_int_of_0_or_more(bad: object) -> None:
    with pytest.raises(ValueError, match="batch_cut_ticks"):
        make_replica(0, batch_cut_ticks=bad)
