"""The simulator's seed sweep: every fault kind, safety after every step, liveness after healing.

Sized for `make test` on two slow cores. Kinds in ``PENDING_FIXES`` find core
bugs not fixed on this branch yet: the sweeps leave them out, and
``test_pending_kind_still_finds_its_bug`` shows each still fails (so it cannot
stay pending silently once the fix lands).
"""

from __future__ import annotations

from collections import Counter

import pytest

from consensus.sim.runner import run_seed
from consensus.sim.scenario import (
    DEFAULT_KINDS,
    FAULT_KINDS,
    HARSH_COMBINATIONS,
    PENDING_FIXES,
    build_scenario,
)

SWEEP_SEEDS = 320
SEEDS_PER_KIND = 4


def test_sweep_with_every_fault_kind_is_safe_and_live() -> None:
    failures: list[str] = []
    kinds_seen: Counter[str] = Counter()
    commits = 0
    for seed in range(SWEEP_SEEDS):
        result = run_seed(build_scenario(seed, 4, DEFAULT_KINDS, every_kind=False))
        kinds_seen.update(result.kinds)
        commits += result.commits
        if result.safety_violations or result.liveness_failure:
            failures.append(f"seed {seed}: {result.safety_violations} {result.liveness_failure}")
    assert failures == []
    assert set(kinds_seen) == set(DEFAULT_KINDS), "some fault kind was never drawn"
    assert commits > SWEEP_SEEDS * 5


@pytest.mark.parametrize("kind", DEFAULT_KINDS)
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


def test_pending_fixes_are_real_kinds_and_every_kind_is_in_a_harsh_combination() -> None:
    assert set(PENDING_FIXES) <= set(FAULT_KINDS)
    assert set(DEFAULT_KINDS) == set(FAULT_KINDS) - set(PENDING_FIXES)
    harsh = {kind for kinds in HARSH_COMBINATIONS for kind in kinds}
    issue_8_kinds = (*FAULT_KINDS[FAULT_KINDS.index("lying_view_change") :], "long_outage")
    assert len(issue_8_kinds) == 8 and set(issue_8_kinds) <= harsh


@pytest.mark.parametrize("kind", sorted(PENDING_FIXES))
def test_pending_kind_still_finds_its_bug(kind: str) -> None:
    """A pending kind must fail on this branch: once its fix is merged this test
    fails, and the kind must leave PENDING_FIXES and join the sweeps."""
    for seed in range(SEEDS_PER_KIND):
        result = run_seed(build_scenario(10_000 + seed, 4, (kind,), every_kind=True))
        if result.safety_violations or result.liveness_failure:
            return
    pytest.fail(f"{kind} no longer fails: {PENDING_FIXES[kind]} is fixed, enable the kind")


@pytest.mark.parametrize("kinds", HARSH_COMBINATIONS, ids="+".join)
def test_harsh_combinations(kinds: tuple[str, ...]) -> None:
    """Several faults at once in every seed."""
    pending = [k for k in kinds if k in PENDING_FIXES]
    if pending:
        pytest.skip(f"PENDING_FIXES: {', '.join(PENDING_FIXES[k] for k in pending)}")
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
        scenario = build_scenario(40_000 + seed, 7, DEFAULT_KINDS, every_kind=False)
        assert len(scenario.byzantine) in (0, 2)
        two_byzantine += len(scenario.byzantine) == 2
        result = run_seed(scenario)
        assert result.safety_violations == []
        assert result.liveness_failure is None, result.liveness_failure
    assert two_byzantine >= 3
