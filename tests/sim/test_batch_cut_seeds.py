"""The seed sweep with the node's batch cut in every replica (``batch_cut_ticks``):
a primary that holds short batches for a few ticks stays safe under every fault
kind, and live once faults heal (the sweep itself runs with no cut,
tests/sim/test_simulator_seeds.py)."""

from __future__ import annotations

from dataclasses import replace

from consensus.replica import Replica
from consensus.sim.keys import verify
from consensus.sim.runner import SeedResult, Simulation
from consensus.sim.scenario import DEFAULT_KINDS, Scenario, build_scenario

SEEDS = 48
CUT_TICKS = 3


class CutSimulation(Simulation):
    """The simulator with every replica's config given a batch cut."""

    def __init__(self, scenario: Scenario, cut_ticks: int) -> None:
        super().__init__(scenario)
        self.configs = [replace(c, batch_cut_ticks=cut_ticks) for c in self.configs]
        self.replicas = [
            Replica(c, sign, verify) for c, sign in zip(self.configs, self.signers, strict=True)
        ]


def _run(seed: int, cut_ticks: int) -> SeedResult:
    return CutSimulation(build_scenario(seed, 4, DEFAULT_KINDS, every_kind=False), cut_ticks).run()


def test_a_batch_cut_is_safe_and_live_under_every_fault_kind() -> None:
    failures: list[str] = []
    commits = 0
    for seed in range(SEEDS):
        result = _run(20_000 + seed, CUT_TICKS)
        commits += result.commits
        if result.safety_violations or result.liveness_failure:
            failures.append(f"seed {seed}: {result.safety_violations} {result.liveness_failure}")
    assert failures == []
    assert commits > SEEDS * 5


def test_the_cut_makes_fewer_bigger_blocks_for_the_same_requests() -> None:
    """The same seeds with and without the cut: the cut commits the requests in
    fewer blocks (the simulator's clients submit over many ticks)."""
    with_cut = [_run(30_000 + seed, CUT_TICKS) for seed in range(8)]
    without = [_run(30_000 + seed, 0) for seed in range(8)]
    assert all(not r.safety_violations and r.liveness_failure is None for r in with_cut)
    assert sum(r.commits for r in with_cut) < sum(r.commits for r in without)
