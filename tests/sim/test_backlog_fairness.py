"""The request timer under a backlog (issue 9, overload): an honest primary that
works through a backlog deeper than the view-change timeout keeps its view; a
primary that leaves one client's request out is still replaced.

The runs are the simulator's, with the gossip delay of a real network made
explicit: a request reaches the primary ``GOSSIP_TICKS`` after the backups (or
the other way round), so the backups' arrival order differs from the
primary's. The primary can commit one batch of ``max_batch_size`` = 8 at a
time (``max_inflight_batches`` = 1, ~3 ticks a batch), and a burst of 240
requests lands on it just after the backups got the head request: the head
waits ~90 ticks, three view-change timeouts (30 ticks), behind requests the
backups saw after it, but within the gossip delay.

Before the fair-order rule the backups' deadline ran a timeout after the head
became their oldest pending request, so they deposed the honest primary at
tick 39 (view 1, then more view changes as the backlog moved along).
"""

from __future__ import annotations

from dataclasses import replace

from consensus.events import RequestSubmitted
from consensus.messages import Request
from consensus.replica import Replica
from consensus.sim.keys import verify
from consensus.sim.runner import TICK_MS, VICTIM_PREFIX, SeedResult, Simulation
from consensus.sim.scenario import Scenario

GOSSIP_TICKS = 5
TIMEOUT_TICKS = 30
"""The simulator's view-change timeout (``runner.sim_config``)."""
HEAD = Request(VICTIM_PREFIX + b"head", b"the head of the backups' queue")
BURST = [Request(b"client1-burst%d" % i, b"burst-%d" % i) for i in range(240)]
STREAM = [Request(b"client2-stream%d" % i, b"stream-%d" % i) for i in range(100)]


class BacklogSimulation(Simulation):
    """The simulator with requests handed to each replica at its own tick."""

    def __init__(self, scenario: Scenario, schedule: dict[int, list[tuple[int, Request]]]) -> None:
        super().__init__(scenario)
        self.schedule = schedule
        self.released: set[bytes] = set()
        self.requests = list({r.request_id: r for at in schedule.values() for _, r in at}.values())
        self.submit_at = {}
        self.configs = [replace(c, max_inflight_batches=1) for c in self.configs]
        self.replicas = [
            Replica(c, sign, verify) for c, sign in zip(self.configs, self.signers, strict=True)
        ]

    def submit(self, requests: list[Request]) -> None:
        for index, request in self.schedule.get(self.now, []):
            self.released.add(request.request_id)
            if self.replicas[index] is not None and self.hands(index, request):
                self.injected["scheduled_request"] += 1
                self.deliver(index, RequestSubmitted(request))
        # The clients' retries, of requests already out only.
        super().submit([r for r in requests if r.request_id in self.released])


def schedule_of(*, stream: bool) -> dict[int, list[tuple[int, Request]]]:
    """HEAD reaches the backups at tick 9 and the primary at 14; the burst reaches
    the primary at 10 and the backups at 15; with ``stream``, two more requests a
    tick from tick 20 to 69 the same way (primary first)."""
    schedule: dict[int, list[tuple[int, Request]]] = {}

    def at(tick: int, replicas: range | tuple[int, ...], requests: list[Request]) -> None:
        schedule.setdefault(tick, []).extend((i, r) for r in requests for i in replicas)

    at(9, (1, 2, 3), [HEAD])
    at(9 + GOSSIP_TICKS, (0,), [HEAD])
    at(10, (0,), BURST)
    at(10 + GOSSIP_TICKS, (1, 2, 3), BURST)
    if stream:
        for k in range(50):
            pair = STREAM[2 * k : 2 * k + 2]
            at(20 + k, (0,), pair)
            at(20 + k + GOSSIP_TICKS, (1, 2, 3), pair)
    return schedule


def run(*, censor: bool, stream: bool) -> tuple[SeedResult, BacklogSimulation]:
    kinds = frozenset({"censoring_primary"}) if censor else frozenset()
    byzantine = (0,) if censor else ()
    scenario = Scenario(
        seed=1, nodes=4, fault_ticks=300, requests=0, kinds=kinds, byzantine=byzantine
    )
    sim = BacklogSimulation(scenario, schedule_of(stream=stream))
    return sim.run(), sim


def executed_at(sim: BacklogSimulation, index: int, request: Request) -> int | None:
    return sim.apps[index].executed_ids.get(request.request_id)


def executed_tick(sim: BacklogSimulation, height: int) -> int:
    """The tick the primary stamped the block at ``height`` with."""
    return sim.apps[1].timestamps_ms[height - 1] // TICK_MS


def test_an_honest_primary_working_through_a_backlog_keeps_its_view() -> None:
    result, sim = run(censor=False, stream=True)
    assert result.safety_violations == [] and result.liveness_failure is None
    assert result.view_changes == 0
    assert [r.view for r in sim.replicas if r is not None] == [0, 0, 0, 0]
    # The head waited behind the burst for about three timeouts (it reached the
    # backups at tick 9), and went before the stream that came after it.
    head_height = executed_at(sim, 1, HEAD)
    assert head_height is not None
    assert executed_tick(sim, head_height) >= 9 + 3 * TIMEOUT_TICKS
    height_of = {rid: h for h, ids in enumerate(sim.apps[1].request_ids, 1) for rid in ids}
    assert height_of[BURST[-1].request_id] <= head_height <= height_of[STREAM[0].request_id]


def test_a_censoring_primary_that_serves_later_requests_is_replaced() -> None:
    result, sim = run(censor=True, stream=True)
    assert result.safety_violations == [] and result.liveness_failure is None
    assert result.view_changes >= 1
    for index in (1, 2, 3):
        assert executed_at(sim, index, HEAD) is not None
    # Replaced for serving the stream first (the burst is done at ~tick 99), not
    # for a timeout without progress, which could not end before tick 129.
    head_height = executed_at(sim, 1, HEAD)
    assert head_height is not None and executed_tick(sim, head_height) < 99 + TIMEOUT_TICKS


def test_a_censoring_primary_that_serves_only_filler_is_replaced() -> None:
    result, sim = run(censor=True, stream=False)
    assert result.safety_violations == [] and result.liveness_failure is None
    assert result.view_changes >= 1
    assert sim.injected["censoring_primary"] > 0  # its own filler kept committing
    for index in (1, 2, 3):
        assert executed_at(sim, index, HEAD) is not None
