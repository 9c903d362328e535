"""The persistence contract: after a restart from its records, a replica never signs a
message that conflicts with one it signed before the crash."""

from __future__ import annotations

from consensus.actions import Action, Broadcast, Persist
from consensus.events import MessageReceived, RequestSubmitted, Tick
from consensus.messages import PrePrepare
from consensus.persistence import Record, ViewRecord, VoteRecord
from consensus.replica import Replica
from consensus.sim.fixtures import make_config, make_replica, pre_prepare, request
from consensus.sim.keys import signer, verify

BATCH = (request(1),)
OTHER = (request(2),)


def records_of(actions: list[Action]) -> list[Record]:
    return [r for a in actions if isinstance(a, Persist) for r in a.records]


def restore(replica_id: int, records: list[Record], executed: int = 0) -> Replica:
    return Replica.restore(
        make_config(replica_id),
        signer(replica_id),
        verify,
        records=records,
        executed_seq=executed,
        state_root=bytes(32),
    )


def test_restarted_backup_refuses_to_prepare_a_conflicting_batch() -> None:
    backup = make_replica(1)
    records = records_of(backup.step(MessageReceived(0, pre_prepare(0, 1, BATCH))))
    restarted = restore(1, records)
    # A byzantine primary now offers another batch for the same (view, seq).
    assert restarted.step(MessageReceived(0, pre_prepare(0, 1, OTHER))) == []
    assert restarted.ignored_counts["would_conflict"] == 1
    assert restarted.own_votes[("Prepare", 0, 1)] != restarted.log.slots[1].pre_prepares[0].digest


def test_restarted_primary_never_reuses_a_sequence_number() -> None:
    primary = make_replica(0)
    records = records_of(primary.step(RequestSubmitted(request(1))))
    restarted = restore(0, records)
    actions = restarted.step(RequestSubmitted(request(2)))
    sent = [a.message for a in actions if isinstance(a, Broadcast)]
    assert [(m.view, m.seq) for m in sent if isinstance(m, PrePrepare)] == [(0, 2)]
    assert len(sent) == 1


def test_restarted_replica_resumes_its_view_change_with_the_same_message() -> None:
    backup = make_replica(1)
    backup.step(RequestSubmitted(request(1)))
    actions = [a for _ in range(10) for a in backup.step(Tick(0))]
    records = records_of(actions)
    assert isinstance(records[0], ViewRecord)
    assert isinstance(records[1], VoteRecord)
    vc = records[1].message
    restarted = restore(1, records)
    assert (restarted.view, restarted.view_active) == (1, False)
    resent = [a for _ in range(5) for a in restarted.step(Tick(0))]
    assert Broadcast(vc) in resent


def test_losing_an_unsynced_suffix_is_harmless_because_nothing_was_sent() -> None:
    backup = make_replica(1)
    actions = backup.step(MessageReceived(0, pre_prepare(0, 1, BATCH)))
    assert isinstance(actions[0], Persist)
    assert isinstance(actions[1], Broadcast)  # the vote leaves only after the persist
    restarted = restore(1, [])  # the write never reached the disk, the vote never left
    redo = restarted.step(MessageReceived(0, pre_prepare(0, 1, BATCH)))
    assert redo == actions


def test_restart_behind_a_stable_checkpoint_asks_for_state() -> None:
    from consensus.persistence import StableCheckpointRecord
    from consensus.sim.fixtures import checkpoint

    root = b"r" * 32
    proof = tuple(checkpoint(4, root, s) for s in (0, 2, 3))
    restarted = restore(1, [StableCheckpointRecord(4, root, proof)], executed=2)
    assert restarted.state_transfer_target == 4
    requests = [a for _ in range(5) for a in restarted.step(Tick(0))]
    from consensus.actions import RequestStateTransfer

    assert RequestStateTransfer(4, root, (0, 2, 3)) in requests


def test_restart_keeps_every_view_change_since_the_last_view_it_ran() -> None:
    from consensus.messages import ViewChange
    from consensus.sim.fixtures import signed

    vc1 = signed(ViewChange(1, 0, bytes(32), (), (), 1))
    vc2 = signed(ViewChange(2, 0, bytes(32), (), (), 1))
    records: list[Record] = [
        ViewRecord(1, False),
        VoteRecord(vc1),
        ViewRecord(2, False),
        VoteRecord(vc2),
    ]
    restarted = restore(1, records)
    resent = [a for _ in range(5) for a in restarted.step(Tick(0))]
    assert resent == [Broadcast(vc1), Broadcast(vc2)]
    ran_view_1 = restore(1, [ViewRecord(1, False), VoteRecord(vc1), ViewRecord(1, True)])
    assert ran_view_1.own_view_changes == {}
