"""View change: timers and back-off, the join rule, NEW-VIEW built by the new primary
and recomputed by every backup, null batches for gaps."""

from __future__ import annotations

from dataclasses import replace

from consensus.actions import Broadcast, Persist, ReportFault, Send
from consensus.events import MessageReceived, RequestSubmitted, Tick
from consensus.messages import (
    NULL_BATCH,
    Batch,
    ForwardedRequests,
    NewView,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
)
from consensus.persistence import ViewRecord, VoteRecord
from consensus.replica import Replica
from consensus.sim.fixtures import (
    Cluster,
    digest_of,
    make_replica,
    metadata_of,
    pre_prepare,
    prepare,
    request,
    signed,
)
from consensus.view_change import plan_new_view

BATCH = (request(1),)


def ticks(replica: Replica, count: int) -> list[object]:
    out: list[object] = []
    for _ in range(count):
        out.extend(replica.step(Tick(0)))
    return out


def view_change(
    new_view: int, sender: int, prepared: tuple[PreparedCertificate, ...] = ()
) -> ViewChange:
    return signed(ViewChange(new_view, 0, bytes(32), (), prepared, sender))


def prepared_in_view_0(seq: int, batch: Batch = BATCH) -> PreparedCertificate:
    return PreparedCertificate(
        pre_prepare(0, seq, batch), (prepare(0, seq, batch, 1), prepare(0, seq, batch, 2))
    )


def test_request_timeout_starts_a_view_change_persisted_before_broadcast() -> None:
    backup = make_replica(1)
    backup.step(RequestSubmitted(request(1)))
    relay = signed(ForwardedRequests(0, (request(1),), 1))
    assert ticks(backup, 9) == [Send(0, relay)]  # the relay to the primary, at tick 5
    actions = backup.step(Tick(0))
    vc = view_change(1, 1)
    assert actions == [Persist((ViewRecord(1, False), VoteRecord(vc))), Broadcast(vc)]
    assert (backup.view, backup.view_active, backup.backoff_exponent) == (1, False, 1)


def test_no_timer_without_pending_work() -> None:
    backup = make_replica(1)
    assert ticks(backup, 100) == []
    assert backup.view == 0


def test_view_change_carries_prepared_certificates() -> None:
    backup = make_replica(1)
    pp = pre_prepare(0, 1, BATCH)
    backup.step(MessageReceived(0, pp))
    backup.step(MessageReceived(2, prepare(0, 1, BATCH, 2)))
    actions = ticks(backup, 10)
    vcs = [
        a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, ViewChange)
    ]
    assert len(vcs) == 1
    assert vcs[0].prepared == (
        PreparedCertificate(pp, (prepare(0, 1, BATCH, 1), prepare(0, 1, BATCH, 2))),
    )


def test_lone_replica_waits_instead_of_racing_through_views() -> None:
    backup = make_replica(1)
    backup.step(RequestSubmitted(request(1)))
    ticks(backup, 10)
    assert backup.timer_deadline is None  # only its own view-change so far
    actions = ticks(backup, 200)
    assert backup.view == 1
    assert all(isinstance(a, Broadcast) and a.message == view_change(1, 1) for a in actions)


def test_waiting_replica_keeps_resending_its_older_view_changes() -> None:
    # Seeds 9437 and 9884: a peer that missed our VIEW-CHANGE for view 1 may be
    # the new primary of view 1 and need it to complete that view.
    backup = make_replica(3)
    backup.step(RequestSubmitted(request(1)))
    ticks(backup, 10)
    for sender in (0, 2):
        backup.step(MessageReceived(sender, view_change(1, sender)))
    ticks(backup, 20)
    assert backup.view == 2
    resent = [a for a in ticks(backup, 5) if isinstance(a, Broadcast)]
    assert resent == [Broadcast(view_change(1, 3)), Broadcast(view_change(2, 3))]


def test_back_off_doubles_once_a_quorum_changes_view_and_is_capped() -> None:
    backup = make_replica(3)  # primary of view 1 is replica 1, which stays silent
    backup.step(RequestSubmitted(request(1)))
    ticks(backup, 10)
    assert backup.view == 1
    expected_timeouts = [20, 40, 40, 40]  # base 10 doubled per attempt, capped at 40
    for attempt, timeout in enumerate(expected_timeouts):
        view = backup.view
        for sender in (0, 2):
            backup.step(MessageReceived(sender, view_change(view, sender)))
        assert backup.timer_deadline == backup.now_ticks + timeout, attempt
        ticks(backup, timeout)
        assert backup.view == view + 1


def test_join_a_higher_view_after_f_plus_one_view_changes() -> None:
    backup = make_replica(3)
    assert backup.step(MessageReceived(1, view_change(5, 1))) == []
    actions = backup.step(MessageReceived(2, view_change(4, 2)))
    vc = view_change(4, 3)
    assert actions[:2] == [Persist((ViewRecord(4, False), VoteRecord(vc))), Broadcast(vc)]
    assert backup.view == 4
    assert backup.backoff_exponent == 0  # joining is not a timeout


def test_new_primary_sends_new_view_with_null_batches_for_gaps() -> None:
    new_primary = make_replica(1)
    new_primary.step(RequestSubmitted(request(9)))
    ticks(new_primary, 10)
    certs = (prepared_in_view_0(3),)
    assert new_primary.step(MessageReceived(3, view_change(1, 3))) == []
    actions = new_primary.step(MessageReceived(2, view_change(1, 2, certs)))
    nv = next(a.message for a in actions if isinstance(a, Broadcast))
    assert isinstance(nv, NewView)
    assert [vc.sender for vc in nv.view_changes] == [1, 2, 3]
    assert [(p.seq, p.batch) for p in nv.pre_prepares] == [
        (1, NULL_BATCH),
        (2, NULL_BATCH),
        (3, BATCH),
    ]
    assert isinstance(actions[0], Persist)
    assert actions[0].records[0] == ViewRecord(1, True)
    assert (new_primary.view, new_primary.view_active) == (1, True)
    # The pending request goes into the next free sequence number of the new view.
    proposal = [a.message for a in actions if isinstance(a, Broadcast)][-1]
    assert isinstance(proposal, PrePrepare)
    assert (proposal.view, proposal.seq, proposal.batch) == (1, 4, (request(9),))


def build_new_view(certs: tuple[PreparedCertificate, ...] = ()) -> NewView:
    vcs = (view_change(1, 1), view_change(1, 2, certs), view_change(1, 3))
    plan = plan_new_view(vcs, make_replica(1).config)
    pps = tuple(signed(PrePrepare(1, s, d, b, m, 1)) for s, d, b, m in plan.batches)
    return signed(NewView(1, vcs, pps, 1))


def test_backup_recomputes_and_accepts_a_correct_new_view() -> None:
    backup = make_replica(2)
    nv = build_new_view((prepared_in_view_0(1),))
    actions = backup.step(MessageReceived(1, nv))
    p = prepare(1, 1, BATCH, 2, proposed_view=0)
    assert actions == [Persist((ViewRecord(1, True), VoteRecord(p))), Broadcast(p)]
    assert (backup.view, backup.view_active) == (1, True)


def test_backup_rejects_a_new_view_that_drops_a_prepared_batch() -> None:
    backup = make_replica(2)
    honest = build_new_view((prepared_in_view_0(1),))
    null = signed(PrePrepare(1, 1, digest_of(NULL_BATCH, 1), NULL_BATCH, metadata_of(1), 1))
    tampered = signed(replace(honest, pre_prepares=(null,)))
    assert backup.step(MessageReceived(1, tampered)) == [
        ReportFault("invalid_new_view", 1, "new-view pre-prepares differ from the recomputed ones")
    ]
    assert (backup.view, backup.view_active) == (0, True)


def test_backup_rejects_a_new_view_with_a_swapped_batch() -> None:
    backup = make_replica(2)
    honest = build_new_view((prepared_in_view_0(1),))
    other = (request(2),)
    swapped = signed(replace(honest.pre_prepares[0], batch=other))
    tampered = signed(replace(honest, pre_prepares=(swapped,)))
    assert backup.step(MessageReceived(1, tampered)) == [
        ReportFault("invalid_new_view", 1, "new-view batch differs from the prepared one")
    ]


def test_backup_rejects_a_new_view_with_a_forged_or_foreign_view_change() -> None:
    backup = make_replica(2)
    honest = build_new_view()
    forged_vc = replace(honest.view_changes[2], signature=b"\x00" * 16)
    tampered = signed(replace(honest, view_changes=(*honest.view_changes[:2], forged_vc)))
    assert backup.step(MessageReceived(1, tampered)) == [
        ReportFault("invalid_new_view", 1, "new-view carries a forged view-change")
    ]
    foreign = signed(replace(honest, view_changes=(*honest.view_changes[:2], view_change(2, 3))))
    assert backup.step(MessageReceived(1, foreign)) == [
        ReportFault("invalid_new_view", 1, "new-view carries a view-change for another view")
    ]


def test_backup_rejects_a_view_change_with_a_bogus_prepared_certificate() -> None:
    backup = make_replica(2)
    cert = prepared_in_view_0(1)
    short = replace(cert, prepares=cert.prepares[:1])
    assert backup.step(MessageReceived(3, view_change(1, 3, (short,)))) == [
        ReportFault("invalid_view_change", 3, "prepared certificate lacks 2f distinct prepares")
    ]
    from_primary = replace(cert, prepares=(prepare(0, 1, BATCH, 0), cert.prepares[0]))
    assert backup.step(MessageReceived(3, view_change(1, 3, (from_primary,)))) == [
        ReportFault("invalid_view_change", 3, "prepare from the primary")
    ]
    far = prepared_in_view_0(9)
    assert backup.step(MessageReceived(3, view_change(1, 3, (far,)))) == [
        ReportFault("invalid_view_change", 3, "prepared seq 9 outside the sender's watermarks")
    ]
    twice = (cert, cert)
    assert backup.step(MessageReceived(3, view_change(1, 3, twice))) == [
        ReportFault("invalid_view_change", 3, "two prepared certificates for seq 1")
    ]


def test_active_replica_forwards_its_new_view_to_a_lagging_peer_rate_limited() -> None:
    backup = make_replica(2)
    nv = build_new_view()
    backup.step(MessageReceived(1, nv))
    assert backup.step(MessageReceived(3, view_change(1, 3))) == [Send(3, nv)]
    assert backup.step(MessageReceived(3, view_change(1, 3))) == []


def test_new_view_is_forwarded_even_after_we_moved_on_to_a_later_view() -> None:
    # Seeds 100118...: the primary of view 1 ran it, its NEW-VIEW got lost, and it
    # timed out to view 2 while the others still waited for view 1.
    backup = make_replica(2)
    nv = build_new_view()
    backup.step(MessageReceived(1, nv))
    backup.step(RequestSubmitted(request(1)))
    ticks(backup, 10)
    assert (backup.view, backup.view_active) == (2, False)
    assert backup.step(MessageReceived(3, view_change(1, 3))) == [Send(3, nv)]
    # A NEW-VIEW older than the view the peer asks for would not help it.
    backup.view = 3
    assert backup.step(MessageReceived(0, view_change(2, 0))) == []
    assert backup.ignored_counts["stale_view_change"] == 2


def test_a_prepare_from_an_older_view_gets_the_new_view_forwarded() -> None:
    backup = make_replica(2)
    nv = build_new_view()
    backup.step(MessageReceived(1, nv))
    assert backup.step(MessageReceived(3, prepare(0, 1, BATCH, 3))) == [Send(3, nv)]


def test_silent_primary_is_replaced_and_the_request_commits_once() -> None:
    cluster = Cluster()
    cluster.drop_from = {0}
    cluster.submit(request(1))
    cluster.tick(40)
    live = cluster.replicas[1:]
    assert all((r.view, r.view_active) == (1, True) for r in live)
    assert cluster.heights()[1:] == [1, 1, 1]
    executed = [a.batch for a in cluster.executed[1]]
    assert executed == [(request(1),)]


def test_prepared_batch_survives_the_view_change_with_its_digest() -> None:
    cluster = Cluster()
    # Replica 3 never hears anything: only 0, 1, 2 prepare the batch in view 0.
    primary = cluster.replicas[0]
    primary.step(RequestSubmitted(request(1)))
    pp = pre_prepare(0, 1, BATCH)
    for i in (1, 2):
        cluster.replicas[i].step(MessageReceived(0, pp))
    for i in (1, 2):
        for j in (1, 2):
            if i != j:
                cluster.replicas[i].step(MessageReceived(j, prepare(0, 1, BATCH, j)))
    assert all(cluster.replicas[i].log.slots[1].prepared is not None for i in (1, 2))
    cluster.drop_from = {0}
    for i in range(1, 4):
        cluster.replicas[i].add_pending(request(1))
    cluster.tick(60)
    digests = [a.certificate.digest for a in cluster.executed[3]]
    assert digests == [digest_of(BATCH)]
    assert cluster.heights()[1:] == [1, 1, 1]
