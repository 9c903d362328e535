"""plan_actions: Persist barriers split a step's actions; consecutive Persists coalesce."""

from __future__ import annotations

from consensus.action_plan import Stage, group_commit, plan_actions
from consensus.actions import Action, Broadcast, Persist, ReportFault, Send
from consensus.messages import Prepare
from consensus.persistence import ViewRecord


def _prepare(seq: int) -> Prepare:
    return Prepare(view=0, seq=seq, digest=bytes(32), sender=1, signature=b"s" * 64)


def test_consecutive_persists_coalesce_and_guard_the_sends_after_them() -> None:
    view_1, view_2, view_3 = ViewRecord(1, True), ViewRecord(2, False), ViewRecord(3, True)
    fault = ReportFault("malformed", 2, "x")
    actions: list[Action] = [
        fault,
        Persist((view_1,)),
        Persist((view_2,)),
        Broadcast(_prepare(1)),
        Send(0, _prepare(2)),
        Persist((view_3,)),
    ]
    assert plan_actions(actions) == (
        Stage((), (fault,)),
        Stage((view_1, view_2), (Broadcast(_prepare(1)), Send(0, _prepare(2)))),
        Stage((view_3,), ()),
    )


def test_every_action_is_kept_once_in_order() -> None:
    records = [ViewRecord(v, True) for v in range(4)]
    actions: list[Action] = [
        Send(1, _prepare(1)),
        Persist((records[0], records[1])),
        Broadcast(_prepare(2)),
        Persist((records[2],)),
        Persist((records[3],)),
        Send(2, _prepare(3)),
    ]
    stages = plan_actions(actions)
    assert [r for s in stages for r in s.records] == records
    assert [a for s in stages for a in s.actions] == [
        a for a in actions if not isinstance(a, Persist)
    ]
    assert all(not isinstance(a, Persist) for s in stages for a in s.actions)
    assert len(stages) == 3


def test_no_actions_no_stages() -> None:
    assert plan_actions([]) == ()


def test_group_commit_puts_every_record_ahead_of_every_other_action() -> None:
    """The actions of consecutive steps: one sync of all their records, in order, then
    the rest in order, so each record still precedes every action that followed it."""
    records = [ViewRecord(v, True) for v in range(3)]
    fault = ReportFault("malformed", 2, "x")
    first_step: list[Action] = [Persist((records[0],)), Broadcast(_prepare(1))]
    second_step: list[Action] = [fault, Persist((records[1], records[2])), Send(0, _prepare(2))]
    assert group_commit([*first_step, *second_step]) == Stage(
        tuple(records), (Broadcast(_prepare(1)), fault, Send(0, _prepare(2)))
    )
    assert group_commit([]) == Stage((), ())
