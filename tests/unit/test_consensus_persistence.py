"""The persistence contract: after a restart from its records, a replica never signs a
message that conflicts with one it signed before the crash."""

from __future__ import annotations

from collections import Counter

from consensus.actions import Action, Broadcast, Execute, Persist
from consensus.events import MessageReceived, RequestSubmitted, Tick
from consensus.messages import (
    NULL_BATCH,
    Commit,
    FetchBatch,
    NewView,
    PreparedCertificate,
    PrePrepare,
    Status,
    ViewChange,
    with_batch,
)
from consensus.persistence import Record, ViewRecord, VoteRecord
from consensus.replica import Replica
from consensus.sim.fixtures import (
    header,
    make_config,
    make_replica,
    plan_headers,
    pre_prepare,
    prepare,
    request,
    signed,
)
from consensus.sim.keys import signer, verify
from consensus.view_change import plan_new_view

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
    assert [a for a in resent if not isinstance(a.message, Status)] == [  # type: ignore[union-attr]
        Broadcast(vc1),
        Broadcast(vc2),
    ]
    ran_view_1 = restore(1, [ViewRecord(1, False), VoteRecord(vc1), ViewRecord(1, True)])
    assert ran_view_1.own_view_changes == {}


def test_backup_restarted_right_after_entering_a_view_keeps_its_new_view() -> None:
    # Issue 8 §1.6: backups persisted only the view record and their PREPAREs.
    # A backup that crashed right after entering view 1 with re-issued
    # {1: null, 2: B} lost the NEW-VIEW: it stayed at height 0 and faulted
    # honest relays of the null pre-prepare as invalid batches.
    batch = (request(1),)
    cert = PreparedCertificate(
        header(0, 2, batch), (prepare(0, 2, batch, 1), prepare(0, 2, batch, 2))
    )
    vcs = tuple(
        signed(ViewChange(1, 0, bytes(32), (), (cert,) if s == 2 else (), s)) for s in (1, 2, 3)
    )
    plan = plan_new_view(vcs, make_config(1))
    pps = plan_headers(plan, 1, 1)
    assert [b for _, _, b, _ in plan.proposals] == [NULL_BATCH, None]
    nv = signed(NewView(1, vcs, pps, 1))
    backup = make_replica(2)
    records = records_of(backup.step(MessageReceived(1, nv)))
    restarted = restore(2, records)
    assert (restarted.view, restarted.view_active) == (1, True)
    assert restarted.new_view_message == nv
    # Honest peers relay the re-issued pre-prepares: duplicates, not faults.
    restarted.step(MessageReceived(3, with_batch(pps[1], batch)))  # the one it fetches
    for pp in (with_batch(pps[0], NULL_BATCH), with_batch(pps[1], batch)):
        assert restarted.step(MessageReceived(3, pp)) == []
    assert restarted.fault_counts == Counter()
    # Commits of view 1 execute both heights without fetching anything.
    executed: list[Action] = []
    for pp in pps:
        for sender in (0, 1, 3):
            vote = signed(Commit(1, pp.seq, pp.digest, sender))
            executed += restarted.step(MessageReceived(sender, vote))
    assert [(a.seq, a.batch) for a in executed if isinstance(a, Execute)] == [
        (1, NULL_BATCH),
        (2, batch),
    ]
    assert not any(isinstance(a, Broadcast) and isinstance(a.message, FetchBatch) for a in executed)


def test_a_restarted_backup_keeps_the_batch_of_its_prepared_certificate() -> None:
    # VIEW-CHANGEs and NEW-VIEWs carry digests only (issue 8 §1.4), so the
    # batch a certificate names must be durable where the certificate is: if
    # every replica that prepared it crashed, a NEW-VIEW re-issuing it could
    # never be executed.
    backup = make_replica(2)
    pp = pre_prepare(0, 1, BATCH)
    records = records_of(backup.step(MessageReceived(0, pp)))
    records += records_of(backup.step(MessageReceived(1, prepare(0, 1, BATCH, 1))))
    restarted = restore(2, records)
    assert restarted.log.slots[1].proposal_for(pp.digest) == (BATCH, pp.metadata)
    cert = restarted.log.slots[1].prepared
    assert cert is not None
    vcs = tuple(
        signed(ViewChange(1, 0, bytes(32), (), (cert,) if s == 2 else (), s)) for s in (1, 2, 3)
    )
    nv = signed(NewView(1, vcs, plan_headers(plan_new_view(vcs, make_config(1)), 1, 1), 1))
    actions = restarted.step(MessageReceived(1, nv))
    assert not any(isinstance(a, Broadcast) and isinstance(a.message, FetchBatch) for a in actions)
    assert restarted.log.slots[1].pre_prepares[1].batch == BATCH
