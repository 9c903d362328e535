"""Which faults a seed injects, and when: drawn from the seed's own RNG."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from consensus.sim.byzantine import BYZANTINE_KINDS

NETWORK_KINDS = ("delay", "drop", "duplicate", "reorder")
PARTITION_KINDS = ("partition_symmetric", "partition_asymmetric", "isolate_primary", "split_2_2")
CRASH_KINDS = ("crash_restart", "crash_lose_unsynced")
LAG_KINDS = ("lagging_replica", "long_outage")
FAULT_KINDS = NETWORK_KINDS + PARTITION_KINDS + CRASH_KINDS + LAG_KINDS + BYZANTINE_KINDS
PRIMARY_BYZANTINE = frozenset(
    {"equivocating_primary", "silent_primary", "slow_primary", "censoring_primary"}
)
NEW_VIEW_PRIMARY = frozenset({"equivocating_new_view"})
"""Kinds played by the primary of view 1: the honest primary 0 is deposed early."""
NEEDS_VIEW_CHANGE = frozenset({"lying_view_change", "equivocating_new_view"})
NEEDS_STATE_TRANSFER = frozenset({"lying_state_source"})

PENDING_FIXES: dict[str, str] = {}
"""Fault kinds that find a core bug not yet fixed on this branch (kind -> finding).
``--faults all`` and the `make test` sweeps leave them out, and
tests/sim/test_simulator_seeds.py checks that each still fails; must be empty
once the fixes are merged."""

DEFAULT_KINDS = tuple(k for k in FAULT_KINDS if k not in PENDING_FIXES)
"""What ``--faults all`` draws from."""

HARSH_COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("partition_asymmetric", "silent_primary", "drop", "crash_lose_unsynced"),
    ("split_2_2", "silent_primary", "drop", "duplicate"),
    ("isolate_primary", "crash_restart", "conflicting_votes", "reorder"),
    ("partition_symmetric", "partition_asymmetric", "equivocating_primary", "delay"),
    ("lagging_replica", "huge_view", "crash_lose_unsynced", "drop"),
    ("lying_view_change", "isolate_primary", "drop", "crash_restart"),
    ("equivocating_new_view", "partition_asymmetric", "reorder", "duplicate"),
    ("wrong_checkpoint_root", "lagging_replica", "drop", "crash_lose_unsynced"),
    ("lying_state_source", "crash_restart", "delay", "drop"),
    ("junk_pre_prepares", "isolate_primary", "drop", "delay"),
    ("censoring_primary", "drop", "reorder", "crash_restart"),
    ("long_outage", "drop", "duplicate", "delay"),
    ("oversized_fields", "split_2_2", "drop", "crash_restart"),
)
"""Several faults at once in every seed (`make test` and `make soak`): the first
five found the view-change deadlocks, the rest combine issue 8's kinds."""

WIRE_SHARE = 8
"""One seed in WIRE_SHARE sends every message and record through consensus.wire,
with realistic batches (hundreds of 1-2 KiB requests)."""

LONG_OUTAGE_VIEW_BOUND = 1
"""view_bound for long_outage seeds, so the cut-off replica falls more than
view_bound views behind within the fault window (the default 64 would need
thousands of ticks of view changes)."""

PROBE_WINDOW_TICKS = 800
"""After a long outage heals, another replica crashes for this long; the 2f+1
left (including the one that was cut off) must commit a fresh request."""


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
    wire: bool = False
    view_bound: int | None = None
    second_crash: int | None = None
    """long_outage: the honest replica crashed after healing (None: no probe phase)."""

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
    seed: int,
    nodes: int,
    allowed: tuple[str, ...],
    every_kind: bool,
    fault_ticks: int = 300,
    *,
    wire: bool | None = None,
) -> Scenario:
    """``wire``: send everything through consensus.wire (default: one seed in WIRE_SHARE)."""
    rng = random.Random(f"scenario/{seed}")
    kinds = choose_kinds(rng, allowed, every_kind)
    byzantine: tuple[int, ...] = ()
    if kinds & PRIMARY_BYZANTINE:
        byzantine = (0,)
    elif kinds & NEW_VIEW_PRIMARY:
        byzantine = (1,)
    elif kinds & set(BYZANTINE_KINDS):
        byzantine = (rng.randrange(nodes),)
    faulty = (nodes - 1) // 3
    if byzantine and faulty >= 2:
        # Use the whole fault budget: f byzantine replicas with the same behaviour.
        others = [i for i in range(nodes) if i not in byzantine]
        byzantine = tuple(sorted((*byzantine, *rng.sample(others, faulty - 1))))
    lagging = "lagging_replica" in kinds or bool(kinds & NEEDS_STATE_TRANSFER)
    requests = 40 if lagging else 20
    if wire is None:
        wire = seed % WIRE_SHARE == 0
    scenario = Scenario(seed, nodes, fault_ticks, requests, kinds, byzantine, wire=wire)
    honest = scenario.honest
    for kind in sorted(kinds & set(PARTITION_KINDS + CRASH_KINDS)):
        start = rng.randint(20, fault_ticks - 140)
        end = start + rng.randint(40, 120)
        scenario.timed.append(TimedFault(kind, start, end, rng.choice(honest)))
    if lagging:
        laggard = rng.choice([i for i in honest if i != 0] or honest)
        scenario.timed.append(TimedFault("lagging_replica", 10, fault_ticks, laggard))
    if kinds & NEEDS_VIEW_CHANGE:
        # Depose primary 0 so that the byzantine replica sends VIEW-CHANGEs
        # (and, as primary of view 1, a NEW-VIEW) early in every seed.
        start = rng.randint(10, 40)
        scenario.timed.append(TimedFault("partition_symmetric", start, start + 60, 0))
    if "long_outage" in kinds:
        add_long_outage(scenario, rng)
    return scenario


def add_long_outage(scenario: Scenario, rng: random.Random) -> None:
    """Cut one replica off for most of the fault window while the others churn
    through more than view_bound views (the runner drops fresh PRE-PREPAREs
    during the outage), heal, then crash another honest replica."""
    honest = scenario.honest
    target = rng.choice(honest)
    scenario.view_bound = LONG_OUTAGE_VIEW_BOUND
    scenario.timed.append(TimedFault("long_outage", 10, scenario.fault_ticks - 10, target))
    if not scenario.byzantine:
        # With byzantine replicas too, a second crash would exceed f.
        scenario.second_crash = rng.choice([i for i in honest if i != target])
