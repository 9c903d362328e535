"""Normal case, handler by handler: feed one event, assert the exact actions."""

from __future__ import annotations

import pytest

from consensus.actions import Broadcast, Execute, Persist
from consensus.certificate import CommitCertificate
from consensus.events import ClientBatchReady, Executed, MessageReceived, RequestSubmitted
from consensus.messages import Commit, PreparedCertificate, PrePrepare, Request, header_of
from consensus.persistence import BatchRecord, PreparedRecord, VoteRecord
from consensus.sim.fixtures import (
    Cluster,
    commit,
    make_replica,
    pre_prepare,
    prepare,
    request,
)

BATCH = (request(1),)


def test_primary_proposes_a_pending_request_persisting_before_broadcast() -> None:
    primary = make_replica(0)
    actions = primary.step(RequestSubmitted(request(1)))
    pp = pre_prepare(0, 1, BATCH)
    assert actions == [Persist((VoteRecord(pp),)), Broadcast(pp)]


def test_primary_batches_up_to_the_configured_size() -> None:
    primary = make_replica(0, max_batch_size=2)
    actions = primary.step(ClientBatchReady(tuple(request(i) for i in range(3))))
    first = pre_prepare(0, 1, (request(0), request(1)))
    second = pre_prepare(0, 2, (request(2),))
    assert actions == [
        Persist((VoteRecord(first),)),
        Broadcast(first),
        Persist((VoteRecord(second),)),
        Broadcast(second),
    ]


def test_primary_stops_at_the_high_watermark() -> None:
    primary = make_replica(0, max_batch_size=1)
    actions = primary.step(ClientBatchReady(tuple(request(i) for i in range(12))))
    proposals = [a.message for a in actions if isinstance(a, Broadcast)]
    sent = [m.seq for m in proposals if isinstance(m, PrePrepare)]
    assert sent == list(range(1, 9))  # window 8 above stable checkpoint 0
    assert len(primary.pending) == 12


def test_backup_only_tracks_requests() -> None:
    backup = make_replica(1)
    assert backup.step(RequestSubmitted(request(1))) == []
    assert list(backup.pending) == [b"req-1"]
    assert backup.timer_deadline_ticks == 10


def test_backup_prepares_an_accepted_pre_prepare() -> None:
    backup = make_replica(1)
    actions = backup.step(MessageReceived(0, pre_prepare(0, 1, BATCH)))
    p = prepare(0, 1, BATCH, 1)
    assert actions == [Persist((VoteRecord(p),)), Broadcast(p)]
    assert backup.inflight == {b"req-1": 1}


def test_prepared_sends_commit_with_the_certificate_persisted_first() -> None:
    backup = make_replica(1)
    pp = pre_prepare(0, 1, BATCH)
    backup.step(MessageReceived(0, pp))
    actions = backup.step(MessageReceived(2, prepare(0, 1, BATCH, 2)))
    cert = PreparedCertificate(header_of(pp), (prepare(0, 1, BATCH, 1), prepare(0, 1, BATCH, 2)))
    c = commit(0, 1, BATCH, 1)
    batch_record = BatchRecord(1, pp.digest, BATCH, pp.metadata)
    assert actions == [
        Persist((PreparedRecord(cert), batch_record, VoteRecord(c))),
        Broadcast(c),
    ]


def test_prepares_before_the_pre_prepare_count_once_it_arrives() -> None:
    backup = make_replica(1)
    assert backup.step(MessageReceived(2, prepare(0, 1, BATCH, 2))) == []
    actions = backup.step(MessageReceived(0, pre_prepare(0, 1, BATCH)))
    kinds = [type(a.message).__name__ for a in actions if isinstance(a, Broadcast)]
    assert kinds == ["Prepare", "Commit"]


def test_commit_quorum_executes_with_a_certificate() -> None:
    backup = make_replica(1)
    pp = pre_prepare(0, 1, BATCH)
    backup.step(MessageReceived(0, pp))
    backup.step(MessageReceived(2, prepare(0, 1, BATCH, 2)))
    assert backup.step(MessageReceived(0, commit(0, 1, BATCH, 0))) == []
    actions = backup.step(MessageReceived(2, commit(0, 1, BATCH, 2)))
    commits: tuple[Commit, ...] = (
        commit(0, 1, BATCH, 0),
        commit(0, 1, BATCH, 1),
        commit(0, 1, BATCH, 2),
    )
    cert = CommitCertificate(0, 1, pp.digest, commits)
    assert actions == [Execute(1, BATCH, pp.metadata, cert)]
    assert backup.last_executed == 1
    assert backup.pending == {}
    assert b"req-1" in backup.committed_ids


def test_execution_is_strictly_in_sequence_order() -> None:
    backup = make_replica(1)
    second = (request(2),)
    for seq, batch in ((2, second), (1, BATCH)):
        backup.step(MessageReceived(0, pre_prepare(0, seq, batch)))
        backup.step(MessageReceived(2, prepare(0, seq, batch, 2)))
    for sender in (0, 2):
        actions = backup.step(MessageReceived(sender, commit(0, 2, second, sender)))
    assert actions == []  # height 2 committed, but height 1 is not yet
    backup.step(MessageReceived(0, commit(0, 1, BATCH, 0)))
    actions = backup.step(MessageReceived(2, commit(0, 1, BATCH, 2)))
    assert [a.seq for a in actions if isinstance(a, Execute)] == [1, 2]


def test_duplicate_client_requests_are_dropped() -> None:
    primary = make_replica(0)
    primary.step(RequestSubmitted(request(1)))
    assert primary.step(RequestSubmitted(request(1))) == []
    assert primary.ignored_counts["duplicate_request"] == 1


def test_malformed_client_requests_are_dropped() -> None:
    primary = make_replica(0, max_request_bytes=4)
    assert primary.step(RequestSubmitted(Request(b"r", b"too long"))) == []
    assert primary.step(RequestSubmitted(Request(b"", b"x"))) == []
    assert primary.step(RequestSubmitted(Request(b"r" * 65, b"x"))) == []
    assert primary.ignored_counts["malformed_request"] == 3


def test_committed_requests_are_never_proposed_again() -> None:
    cluster = Cluster()
    cluster.submit(request(1))
    assert cluster.heights() == [1, 1, 1, 1]
    cluster.submit(request(1))
    cluster.tick(30)
    assert cluster.heights() == [1, 1, 1, 1]


def test_four_replicas_commit_the_same_history() -> None:
    cluster = Cluster()
    for i in range(10):
        cluster.submit(request(i))
    assert cluster.heights() == [10] * 4
    assert len({tuple(r) for r in cluster.roots}) == 1
    assert all(r.stable_seq == 8 for r in cluster.replicas)


def test_executed_event_for_an_unknown_height_is_a_local_bug() -> None:
    import pytest

    from consensus.invariants import InvariantViolation

    with pytest.raises(InvariantViolation):
        make_replica(1).step(Executed(1, bytes(32)))


def test_primary_keeps_at_most_max_inflight_batches_proposed_and_unexecuted() -> None:
    primary = make_replica(0, max_batch_size=1, max_inflight_batches=2)
    actions = primary.step(ClientBatchReady(tuple(request(i) for i in range(6))))
    proposals = [a.message for a in actions if isinstance(a, Broadcast)]
    assert [m.seq for m in proposals if isinstance(m, PrePrepare)] == [1, 2]
    # Seq 1 commits: it is handed to execution, and one more batch may leave.
    first = (request(0),)
    for sender in (1, 2):
        primary.step(MessageReceived(sender, prepare(0, 1, first, sender)))
    actions = []
    for sender in (1, 2):
        actions += primary.step(MessageReceived(sender, commit(0, 1, first, sender)))
    assert any(isinstance(a, Execute) and a.seq == 1 for a in actions)
    sent = [a.message for a in actions if isinstance(a, Broadcast)]
    assert [m.seq for m in sent if isinstance(m, PrePrepare)] == [3]
    assert [r.request_id for r in next(m for m in sent if isinstance(m, PrePrepare)).batch] == [
        b"req-2"
    ]


def test_without_a_cap_the_window_bounds_the_batches_in_flight() -> None:
    primary = make_replica(0, max_batch_size=1)
    actions = primary.step(ClientBatchReady(tuple(request(i) for i in range(6))))
    proposals = [a.message for a in actions if isinstance(a, Broadcast)]
    assert [m.seq for m in proposals if isinstance(m, PrePrepare)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("bad", [0, -1, True])
def test_max_inflight_batches_must_be_positive(bad: object) -> None:
    with pytest.raises(ValueError, match="max_inflight_batches"):
        make_replica(0, max_inflight_batches=bad)
