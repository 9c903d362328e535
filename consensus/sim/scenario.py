"""Which faults a seed injects, and when: drawn from the seed's own RNG."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from consensus.sim.byzantine import BYZANTINE_KINDS

NETWORK_KINDS = ("delay", "drop", "duplicate", "reorder")
PARTITION_KINDS = ("partition_symmetric", "partition_asymmetric", "isolate_primary", "split_2_2")
CRASH_KINDS = ("crash_restart", "crash_lose_unsynced")
LAG_KINDS = ("lagging_replica",)
FAULT_KINDS = NETWORK_KINDS + PARTITION_KINDS + CRASH_KINDS + LAG_KINDS + BYZANTINE_KINDS
PRIMARY_BYZANTINE = frozenset({"equivocating_primary", "silent_primary", "slow_primary"})


@dataclass(frozen=True, slots=True)
class TimedFault:
    kind: str
    start_tick: int
    end_tick: int
    target: int


@dataclass(slots=True)
class Scenario:
    seed: int
    nodes: int
    fault_ticks: int
    requests: int
    kinds: frozenset[str]
    byzantine: tuple[int, ...]
    timed: list[TimedFault] = field(default_factory=list)

    @property
    def honest(self) -> list[int]:
        return [i for i in range(self.nodes) if i not in self.byzantine]


def choose_kinds(rng: random.Random, allowed: tuple[str, ...], every_kind: bool) -> frozenset[str]:
    """``every_kind``: use all of ``allowed`` (an explicit --faults list); otherwise draw
    a few benign kinds and at most one byzantine behaviour (for f byzantine replicas)."""
    if every_kind or not allowed:
        return frozenset(allowed)
    benign = [k for k in allowed if k not in BYZANTINE_KINDS]
    byzantine = [k for k in allowed if k in BYZANTINE_KINDS]
    chosen = set(rng.sample(benign, min(len(benign), rng.randint(1, 3))))
    if byzantine and rng.random() < 0.6:
        chosen.add(rng.choice(byzantine))
    return frozenset(chosen)


def build_scenario(
    seed: int, nodes: int, allowed: tuple[str, ...], every_kind: bool, fault_ticks: int = 300
) -> Scenario:
    rng = random.Random(f"scenario/{seed}")
    kinds = choose_kinds(rng, allowed, every_kind)
    byzantine: tuple[int, ...] = ()
    if kinds & PRIMARY_BYZANTINE:
        byzantine = (0,)
    elif kinds & set(BYZANTINE_KINDS):
        byzantine = (rng.randrange(nodes),)
    faulty = (nodes - 1) // 3
    if byzantine and faulty >= 2:
        # Use the whole fault budget: f byzantine replicas with the same behaviour.
        others = [i for i in range(nodes) if i not in byzantine]
        byzantine = tuple(sorted((*byzantine, *rng.sample(others, faulty - 1))))
    requests = 40 if "lagging_replica" in kinds else 20
    scenario = Scenario(seed, nodes, fault_ticks, requests, kinds, byzantine)
    honest = scenario.honest
    for kind in sorted(kinds & set(PARTITION_KINDS + CRASH_KINDS)):
        start = rng.randint(20, fault_ticks - 140)
        end = start + rng.randint(40, 120)
        scenario.timed.append(TimedFault(kind, start, end, rng.choice(honest)))
    if "lagging_replica" in kinds:
        laggard = rng.choice([i for i in honest if i != 0] or honest)
        scenario.timed.append(TimedFault("lagging_replica", 10, fault_ticks, laggard))
    return scenario
