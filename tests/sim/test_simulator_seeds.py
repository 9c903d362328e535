"""The simulator's seed sweep: every fault kind, safety after every step, liveness after healing.

Sized for `make test` on two slow cores: about 460 seeds, ~20 s of CPU.
"""

from __future__ import annotations

from collections import Counter

import pytest

from consensus.sim.runner import run_seed
from consensus.sim.scenario import FAULT_KINDS, build_scenario

SWEEP_SEEDS = 320
SEEDS_PER_KIND = 4


def test_sweep_with_every_fault_kind_is_safe_and_live() -> None:
    failures: list[str] = []
    kinds_seen: Counter[str] = Counter()
    commits = 0
    for seed in range(SWEEP_SEEDS):
        result = run_seed(build_scenario(seed, 4, FAULT_KINDS, every_kind=False))
        kinds_seen.update(result.kinds)
        commits += result.commits
        if result.safety_violations or result.liveness_failure:
            failures.append(f"seed {seed}: {result.safety_violations} {result.liveness_failure}")
    assert failures == []
    assert set(kinds_seen) == set(FAULT_KINDS), "some fault kind was never drawn"
    assert commits > SWEEP_SEEDS * 5


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_alone(kind: str) -> None:
    for seed in range(SEEDS_PER_KIND):
        result = run_seed(build_scenario(10_000 + seed, 4, (kind,), every_kind=True))
        assert result.safety_violations == [], (kind, seed)
        assert result.liveness_failure is None, (kind, seed, result.liveness_failure)
        injected = sum(
            count
            for name, count in result.faults_injected.items()
            if name == kind or (kind == "lagging_replica" and name == "state_transfer")
        )
        if kind not in ("crash_lose_unsynced",):
            assert injected > 0, (kind, seed, dict(result.faults_injected))


HARSH_COMBINATIONS = [
    ("partition_asymmetric", "silent_primary", "drop", "crash_lose_unsynced"),
    ("split_2_2", "silent_primary", "drop", "duplicate"),
    ("isolate_primary", "crash_restart", "conflicting_votes", "reorder"),
    ("partition_symmetric", "partition_asymmetric", "equivocating_primary", "delay"),
    ("lagging_replica", "huge_view", "crash_lose_unsynced", "drop"),
]


@pytest.mark.parametrize("kinds", HARSH_COMBINATIONS, ids="+".join)
def test_harsh_combinations(kinds: tuple[str, ...]) -> None:
    """Several faults at once in every seed: these found the view-change deadlocks."""
    for seed in range(12):
        result = run_seed(build_scenario(50_000 + seed, 4, kinds, every_kind=True))
        assert result.safety_violations == [], (kinds, seed)
        assert result.liveness_failure is None, (kinds, seed, result.liveness_failure)


def test_lagging_replica_really_needs_state_transfer() -> None:
    transfers = 0
    for seed in range(8):
        result = run_seed(build_scenario(20_000 + seed, 4, ("lagging_replica",), True))
        assert result.liveness_failure is None
        transfers += result.faults_injected["state_transfer"]
    assert transfers >= 8


def test_crashes_really_lose_unsynced_writes() -> None:
    from consensus.sim.runner import Simulation

    lost = 0
    for seed in range(12):
        sim = Simulation(build_scenario(30_000 + seed, 4, ("crash_lose_unsynced",), True))
        result = sim.run()
        assert result.safety_violations == [] and result.liveness_failure is None
        lost += sum(s.lost_records for s in sim.storage)
    assert lost > 0


def test_seven_replicas_tolerate_two_byzantine_replicas() -> None:
    two_byzantine = 0
    for seed in range(10):
        scenario = build_scenario(40_000 + seed, 7, FAULT_KINDS, every_kind=False)
        assert len(scenario.byzantine) in (0, 2)
        two_byzantine += len(scenario.byzantine) == 2
        result = run_seed(scenario)
        assert result.safety_violations == []
        assert result.liveness_failure is None, result.liveness_failure
    assert two_byzantine >= 3
