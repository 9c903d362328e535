"""Issue 8 §1.2: a primary that leaves out one bank's request but commits filler.

The view-change timer used to restart on every execution, so a primary that
committed some other request at least once per timeout was never replaced and
the victim's request never ran. Now each pending request has its own deadline
(from its arrival, or the start of the view if later): the oldest pending one
drives the timer, and executing other requests does not move it.
"""

from __future__ import annotations

from consensus.actions import Action, Send
from consensus.events import ClientBatchReady, Event, MessageReceived, RequestSubmitted, Tick
from consensus.messages import ForwardedRequests, Request
from consensus.replica import Replica
from consensus.sim.fixtures import Cluster, make_config, request
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


def test_the_oldest_pending_request_sets_the_deadline_and_execution_does_not_reset_it() -> None:
    backup = Replica(make_config(1), signer(1), verify)
    backup.step(RequestSubmitted(VICTIM))
    for _ in range(4):
        backup.step(Tick(0))
    backup.step(RequestSubmitted(request(1)))
    assert backup.request_deadline() == 10  # the victim's, not the later request's
    backup.forget_request(request(1).request_id)
    assert backup.request_deadline() == 10


def test_backups_relay_a_waiting_request_to_the_primary_once_per_view() -> None:
    backup = Replica(make_config(1), signer(1), verify)
    backup.step(RequestSubmitted(VICTIM))
    out = [a for _ in range(12) for a in backup.step(Tick(0))]
    relays = [a for a in out if isinstance(a, Send) and isinstance(a.message, ForwardedRequests)]
    assert [(a.to, a.message.requests) for a in relays] == [(0, (VICTIM,))]
