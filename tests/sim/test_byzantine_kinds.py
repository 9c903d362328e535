"""Issue 8's fault kinds do what they claim, and the checks that judge them can fail."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from consensus.messages import (
    Commit,
    Message,
    NewView,
    PrePrepare,
    ProposalMetadata,
    Request,
    ViewChange,
    proposal_digest,
    signed_bytes,
)
from consensus.sim import runner
from consensus.sim.app import SimApp
from consensus.sim.byzantine import JUNK_PER_SLOT, OVERSIZED_BYTES
from consensus.sim.checks import oversized_retained
from consensus.sim.fixtures import make_replica
from consensus.sim.keys import signer, verify
from consensus.sim.runner import CHAIN_ID, VICTIM_PREFIX, Simulation, run_seed
from consensus.sim.scenario import LONG_OUTAGE_VIEW_BOUND, build_scenario
from consensus.sim.state_transfer import ServedHistory, history_problem, serve, serve_lie
from consensus.sim.wire_check import WireCheck
from consensus.view_change import authentic, new_view_problem, view_change_problem
from consensus.wire import MAX_WIRE_BYTES


def test_a_kept_oversized_field_is_a_resource_violation() -> None:
    replica = make_replica(0)
    assert oversized_retained(replica) is None
    commit = Commit(0, 1, bytes(OVERSIZED_BYTES), 1)
    commit = replace(commit, signature=signer(1)(signed_bytes(commit, CHAIN_ID)))
    replica.log.slot(1).add_commit(commit)
    problem = oversized_retained(replica)
    assert problem is not None and "1048576-byte digest" in problem


def test_honest_wire_refusal_fails_the_run_and_a_byzantine_one_is_dropped() -> None:
    huge = (Request(b"r", bytes(MAX_WIRE_BYTES)),)
    metadata = ProposalMetadata(0, 0)
    pp = PrePrepare(0, 1, proposal_digest(huge, metadata, CHAIN_ID), huge, metadata, 0, b"s" * 16)
    wire = WireCheck()
    assert wire.message(pp, honest=False) is None
    assert wire.refusals == [] and wire.counts["wire_refused"] == 1
    assert wire.message(pp, honest=True) is None
    assert wire.refusals == ["wire refused an honest PrePrepare"]
    small = replace(pp, batch=(Request(b"r", b"p"),))
    assert WireCheck().message(small, honest=True) == small


def test_wire_seeds_carry_realistic_batches_through_the_codec() -> None:
    scenario = build_scenario(8, 4, ("drop",), every_kind=True)
    assert scenario.wire
    assert not build_scenario(9, 4, ("drop",), every_kind=True).wire
    sim = Simulation(scenario)
    result = sim.run()
    assert result.safety_violations == [] and result.liveness_failure is None
    assert sim.wire is not None and sim.wire.counts["wire_messages"] > 50
    assert sim.wire.largest_bytes > 100 * 1024  # batches of ~a hundred 1-2 KiB requests
    assert len(sim.requests) >= 200
    assert all(1024 <= len(r.payload) <= 2048 for r in sim.requests)


def test_a_lying_state_source_is_refused() -> None:
    app = SimApp()
    for seq in range(1, 9):
        batch = (Request(b"req-%d" % seq, b"p"),)
        metadata = ProposalMetadata(seq * 100, 0)
        app.execute(seq, proposal_digest(batch, metadata, CHAIN_ID), batch, metadata)
    root = app.roots[8]
    assert history_problem(serve(app, 8), 8, root, CHAIN_ID) is None
    rng = random.Random(3)
    lies = [serve_lie(app, 8, rng, CHAIN_ID) for _ in range(20)]
    assert {history_problem(lie, 8, root, CHAIN_ID) for lie in lies} == {
        "a batch does not match its digest",
        "root differs from the stable checkpoint",
    }
    whole = serve(app, 8)
    short = ServedHistory(whole.digests[:7], whole.batches[:7], whole.metadata[:7])
    assert history_problem(short, 8, root, CHAIN_ID) == "wrong length"


class TrustingTransfer(Simulation):
    """A runtime that installs whatever a state-transfer source serves."""

    def transfer_from(self, index: int, seq: int, root: bytes, peers: tuple[int, ...]) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(runner, "history_problem", lambda *args: None)
            super().transfer_from(index, seq, root, peers)


def test_installing_a_lie_is_caught_and_checking_it_is_safe() -> None:
    kinds = ("lying_state_source",)
    caught = 0
    for seed in range(4):
        broken = TrustingTransfer(build_scenario(20_000 + seed, 4, kinds, True)).run()
        # A changed digest breaks the root chain (total order); a batch changed
        # under its old digest keeps the roots but loses a real request, which
        # that replica then never executes (or executes at another height).
        caught += bool(broken.safety_violations or broken.liveness_failure)
        honest = run_seed(build_scenario(20_000 + seed, 4, kinds, True))
        assert honest.safety_violations == [] and honest.liveness_failure is None
        assert honest.faults_injected["state_source_refused"] >= 1
    assert caught == 4


def test_the_censoring_primary_never_sees_the_victims_requests_but_the_check_does() -> None:
    sim = Simulation(build_scenario(10_000, 4, ("censoring_primary",), every_kind=True))
    assert sim.censors == {0}
    victims = {r.request_id for r in sim.requests if r.request_id.startswith(VICTIM_PREFIX)}
    assert victims
    for tick in range(sim.scenario.fault_ticks):
        sim.submit(sim.submit_at.get(tick, []))
    censor, backup = sim.replicas[0], sim.replicas[1]
    assert censor is not None and backup is not None
    assert victims.isdisjoint(censor.pending) and victims.isdisjoint(censor.committed_ids)
    assert victims <= set(backup.pending)
    problem = sim.liveness_problem()
    assert problem is not None and VICTIM_PREFIX.decode() in problem


def test_junk_pre_prepares_fill_every_slot_of_the_window_in_a_future_view() -> None:
    scenario = build_scenario(10_000, 4, ("junk_pre_prepares",), every_kind=True)
    sim = Simulation(scenario)
    (index,) = scenario.byzantine
    out = sim.byzantines[index].on_tick(5, 0, 0)
    per_slot: dict[tuple[int, int, int], int] = {}
    for dst, message, _ in out:
        if isinstance(message, PrePrepare):
            key = (dst, message.view, message.seq)
            per_slot[key] = per_slot.get(key, 0) + 1
    assert per_slot and all(view % 4 == index for _, view, _ in per_slot)
    assert set(per_slot.values()) == {JUNK_PER_SLOT}
    assert {seq for _, _, seq in per_slot} == set(range(1, 9))  # the whole window
    assert sim.byzantines[index].on_tick(10, 0, 0) == []  # once per peer and slot


class RecordingSimulation(Simulation):
    """Keeps what replica 1 puts on the wire."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_by_one: list[Message] = []

    def transmit(self, src: int, dst: int, message: Message, delay: int = 0) -> None:
        if src == 1:
            self.sent_by_one.append(message)
        super().transmit(src, dst, message, delay)


def test_view_change_lies_are_valid_and_differ_per_peer() -> None:
    kinds = ("equivocating_new_view", "lying_view_change")
    sim = RecordingSimulation(build_scenario(10_001, 4, kinds, every_kind=True))
    assert sim.scenario.byzantine == (1,)
    result = sim.run()
    assert result.safety_violations == [] and result.liveness_failure is None
    sent = sim.sent_by_one
    config = sim.configs[0]
    vcs = [m for m in sent if isinstance(m, ViewChange)]
    nvs = [m for m in sent if isinstance(m, NewView)]
    assert vcs and nvs
    for vc in vcs:
        assert authentic(vc, config, verify) and view_change_problem(vc, config, verify) is None
    for nv in nvs:
        assert authentic(nv, config, verify) and new_view_problem(nv, config, verify)[0] is None
    by_view: dict[int, set[ViewChange]] = {}
    for vc in vcs:
        by_view.setdefault(vc.new_view, set()).add(vc)
    assert any(len(versions) > 1 for versions in by_view.values())
    assert len(set(nvs)) > 1


def test_long_outage_uses_a_small_view_bound_and_a_second_crash() -> None:
    scenario = build_scenario(10_001, 4, ("long_outage",), every_kind=True)
    assert scenario.view_bound == LONG_OUTAGE_VIEW_BOUND
    assert scenario.second_crash is not None
    outage = next(f for f in scenario.timed if f.kind == "long_outage")
    assert scenario.second_crash != outage.target
    assert outage.end_tick - outage.start_tick > scenario.fault_ticks // 2
