"""Split a ``step()``'s actions into stages at ``Persist`` barriers.

The safety rule of PBFT's durable votes: a vote (or view-change record) is
on disk before any message that could depend on it leaves. ``Replica.step``
returns its actions in order with each ``Persist`` ahead of the sends it
guards. ``plan_actions`` turns that list into stages: each stage is the
records to make durable first (consecutive ``Persist``s coalesced into one
write, since one synced write costs one fsync whatever it holds) and then the
other actions, in their order. A runtime carries out the stages one after
the other and never starts a stage's actions before its records are synced.

The node's runtime and the simulator both run this function, so the
simulator exercises the production ordering (VOPR's lesson, STYLE.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.actions import Action, Persist
from consensus.persistence import Record


@dataclass(frozen=True, slots=True)
class Stage:
    """Sync ``records`` (may be empty), then carry out ``actions`` (no ``Persist`` among them)."""

    records: tuple[Record, ...]
    actions: tuple[Action, ...]


def plan_actions(actions: Sequence[Action]) -> tuple[Stage, ...]:
    """The stages of ``actions``: a new stage starts at each ``Persist`` that follows a
    non-``Persist`` action; consecutive ``Persist``s share one stage's records."""
    stages: list[Stage] = []
    records: list[Record] = []
    others: list[Action] = []
    for action in actions:
        if isinstance(action, Persist):
            if others:
                stages.append(Stage(tuple(records), tuple(others)))
                records, others = [], []
            records.extend(action.records)
        else:
            others.append(action)
    if records or others:
        stages.append(Stage(tuple(records), tuple(others)))
    return tuple(stages)
