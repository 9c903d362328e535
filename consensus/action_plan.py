"""Split a ``step()``'s actions into stages at ``Persist`` barriers.

The safety rule of PBFT's durable votes: a vote (or view-change record) is
on disk before any message that could depend on it leaves. ``Replica.step``
returns its actions in order with each ``Persist`` ahead of the sends it
guards. ``plan_actions`` turns that list into stages: each stage is the
records to make durable first (consecutive ``Persist``s coalesced into one
write, since one synced write costs one fsync whatever it holds) and then the
other actions, in their order. A runtime carries out the stages one after
the other and never starts a stage's actions before its records are synced.

Meant to be shared by the node's runtime and the simulator, so the simulator
exercises the production ordering (VOPR's lesson, STYLE.md); the simulator's
``carry_out`` does not use it yet.

``group_commit`` goes one step further for a runtime that steps several
queued events before carrying out any of their actions (the node's, see
``node/runtime.py``): all their records in one stage ahead of all the other
actions. Moving a record earlier never breaks
the rule (every record still precedes every action that followed it), and it
turns one fsync per stage into one per group: the fsync, not the bytes, is
what a synced write costs.
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


def group_commit(actions: Sequence[Action]) -> Stage:
    """One stage for the actions of consecutive steps: every ``Persist``'s records,
    in order, to sync first, then every other action in its order."""
    records: list[Record] = []
    others: list[Action] = []
    for action in actions:
        if isinstance(action, Persist):
            records.extend(action.records)
        else:
            others.append(action)
    return Stage(tuple(records), tuple(others))
