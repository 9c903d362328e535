"""Issue 8 §1.2: a primary that leaves out one bank's request but commits filler.

The view-change timer used to restart on every execution, so a primary that
committed some other request at least once per timeout was never replaced and
the victim's request never ran. Now the oldest pending request drives the
timer, and an execution moves its deadline only if it served a request this
replica was waiting for that arrived within a timeout of the oldest one
(docs/consensus.md, "Fair order"): filler does not, and neither does anything
once a later request has overtaken it.
"""

from __future__ import annotations

from consensus.actions import Action, Send
from consensus.events import ClientBatchReady, Event, MessageReceived, RequestSubmitted, Tick
from consensus.messages import ForwardedRequests, Request
from consensus.replica import Replica
from consensus.sim.fixtures import Cluster, make_config, pre_prepare, request
from consensus.sim.keys import signer, verify

VICTIM = Request(b"victim-bank-tx", b"pay victim")


class CensoringReplica(Replica):
    """A byzantine primary: it never proposes the victim's request, and
    otherwise follows the protocol (so it commits filler)."""

    def step(self, event: Event) -> list[Action]:
        match event:
            case RequestSubmitted(request=r) if r.request_id == VICTIM.request_id:
                return []
            case ClientBatchReady(requests=rs):
                event = ClientBatchReady(tuple(r for r in rs if r != VICTIM))
            case MessageReceived(message=ForwardedRequests()):
                return []
        return super().step(event)


def censored_cluster() -> Cluster:
    cluster = Cluster()
    cluster.replicas[0] = CensoringReplica(make_config(0), signer(0), verify)
    return cluster


def executed_ids(cluster: Cluster, index: int) -> set[bytes]:
    return {r.request_id for e in cluster.executed[index] for r in e.batch}


def test_a_censoring_primary_that_commits_filler_is_replaced() -> None:
    cluster = censored_cluster()
    cluster.submit(VICTIM)
    # Filler from other banks: one request every 3 ticks, well inside the
    # 10-tick timeout, for 200 ticks.
    for i in range(70):
        cluster.submit(request(i))
        cluster.tick(3)
    for index in (1, 2, 3):
        assert VICTIM.request_id in executed_ids(cluster, index)
        assert cluster.replicas[index].view >= 1
    heights = cluster.heights()
    assert len(heights) == 4 and min(heights[1:]) > 10  # the filler still committed


def test_a_request_executed_in_time_does_not_change_the_view() -> None:
    cluster = Cluster()
    for i in range(20):
        cluster.submit(request(i))
        cluster.tick(3)
    assert [r.view for r in cluster.replicas] == [0, 0, 0, 0]
    assert cluster.heights() == [20, 20, 20, 20]


def test_the_oldest_pending_request_sets_the_deadline_and_serving_a_request_restarts_it() -> None:
    backup = Replica(make_config(1), signer(1), verify)
    backup.step(RequestSubmitted(VICTIM))
    for _ in range(4):
        backup.step(Tick(0))
    backup.step(RequestSubmitted(request(1)))
    assert backup.request_deadline() == 10  # the victim's, not the later request's
    for _ in range(2):
        backup.step(Tick(0))
    # The primary served a request we waited for, which arrived within a timeout
    # of the victim: it may be working through a backlog in arrival order.
    backup.forget_requests([request(1).request_id])
    assert backup.request_deadline() == 16
    # An execution that served nothing we waited for (filler) is no progress.
    for _ in range(3):
        backup.step(Tick(0))
    backup.forget_requests([b"filler we never saw"])
    assert backup.request_deadline() == 16


def test_a_primary_that_served_a_later_request_first_no_longer_moves_the_deadline() -> None:
    """Requests that arrived within a timeout (10 ticks) of the victim restart its
    wait when they are served; one that arrived later overtook it, and from then
    on the victim's deadline is a timeout after it became the oldest."""
    cluster = censored_cluster()
    cluster.submit(VICTIM)
    cluster.tick(2)
    cluster.submit(request(1))  # arrives at tick 2, committed at once
    cluster.tick(3)
    cluster.submit(request(2))  # tick 5
    backups = cluster.replicas[1:]
    assert [b.request_deadline() for b in backups] == [15, 15, 15]
    cluster.tick(6)
    cluster.submit(request(3))  # tick 11: more than a timeout after the victim
    assert [b.request_deadline() for b in backups] == [10, 10, 10]
    assert [b.view for b in backups] == [0, 0, 0]
    cluster.tick()
    assert all(b.view >= 1 or not b.view_active for b in backups)


def relays_in(out: list[Action]) -> list[tuple[int, tuple[Request, ...]]]:
    return [
        (a.to, a.message.requests)
        for a in out
        if isinstance(a, Send) and isinstance(a.message, ForwardedRequests)
    ]


def test_backups_relay_a_waiting_request_to_the_primary_once_per_view() -> None:
    config = make_config(1, view_change_timeout_ticks=30)
    backup = Replica(config, signer(1), verify)
    backup.step(RequestSubmitted(VICTIM))
    first_round = [a for _ in range(5) for a in backup.step(Tick(0))]
    assert relays_in(first_round) == []  # seen at tick 5, not yet waited a round
    later = [a for _ in range(20) for a in backup.step(Tick(0))]
    assert relays_in(later) == [(0, (VICTIM,))]  # at tick 10, and only once


def test_in_flight_requests_are_not_relayed() -> None:
    config = make_config(1, view_change_timeout_ticks=30)
    backup = Replica(config, signer(1), verify)
    backup.step(RequestSubmitted(request(1)))
    backup.step(MessageReceived(0, pre_prepare(0, 1, (request(1),))))
    out = [a for _ in range(25) for a in backup.step(Tick(0))]
    assert relays_in(out) == []


def test_when_the_oldest_request_executes_the_next_oldest_sets_the_deadline() -> None:
    backup = Replica(make_config(1), signer(1), verify)
    backup.step(RequestSubmitted(VICTIM))
    for _ in range(4):
        backup.step(Tick(0))
    backup.step(RequestSubmitted(request(1)))
    assert backup.request_deadline() == 10
    backup.forget_requests([VICTIM.request_id])
    assert backup.request_deadline() == 14
    backup.step(RequestSubmitted(VICTIM))  # pending again, now the newest
    assert backup.request_deadline() == 14


def test_a_progress_timer_whose_work_went_away_does_not_change_the_view() -> None:
    backup = Replica(make_config(1), signer(1), verify)
    backup.step(MessageReceived(0, pre_prepare(0, 1, (request(1),))))
    assert backup.progress_deadline == 10
    backup.log.slots.clear()  # the slot is gone without executing (as after GC)
    out = [a for _ in range(12) for a in backup.step(Tick(0))]
    assert backup.view == 0 and backup.progress_deadline is None
    assert not [a for a in out if isinstance(a, Send)]
