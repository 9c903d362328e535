"""Proposal metadata: the primary's timestamp and first view, bound into the digest,
judged by backups before they prepare, kept by NEW-VIEW re-issues."""

from __future__ import annotations

from dataclasses import replace

from consensus.actions import Broadcast, Persist, ReportFault
from consensus.events import MessageReceived, RequestSubmitted, Tick
from consensus.messages import (
    NULL_BATCH,
    Batch,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ProposalMetadata,
    ViewChange,
    proposal_digest,
)
from consensus.persistence import VoteRecord
from consensus.proposal import bounded_skew, monotonic_timestamps
from consensus.replica import Replica
from consensus.shape import shape_problem
from consensus.sim.fixtures import (
    TEST_CHAIN_ID,
    make_config,
    make_replica,
    pre_prepare,
    request,
    signed,
)
from consensus.sim.keys import SIGNATURE_BYTES, signer, verify
from consensus.view_change import plan_new_view
from consensus.wire import decode_message, encode_message

BATCH = (request(1),)


def deliver(replica: Replica, pp: PrePrepare) -> list[object]:
    return list(replica.step(MessageReceived(pp.sender, pp)))


def prepares_sent(actions: list[object]) -> list[Prepare]:
    return [
        a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, Prepare)
    ]


def test_the_digest_covers_the_metadata() -> None:
    base = proposal_digest(BATCH, ProposalMetadata(5, 0), TEST_CHAIN_ID)
    assert proposal_digest(BATCH, ProposalMetadata(6, 0), TEST_CHAIN_ID) != base
    assert proposal_digest(BATCH, ProposalMetadata(5, 1), TEST_CHAIN_ID) != base
    assert proposal_digest(NULL_BATCH, ProposalMetadata(5, 0), TEST_CHAIN_ID) != base


def test_primary_stamps_the_latest_clock_it_saw_and_never_goes_back() -> None:
    primary = make_replica(0)
    primary.step(Tick(5_000))
    primary.step(Tick(1_000))  # a runtime clock that stepped back
    actions = primary.step(RequestSubmitted(request(1)))
    pp = pre_prepare(0, 1, BATCH, timestamp_ms=5_000)
    assert actions == [Persist((VoteRecord(pp),)), Broadcast(pp)]


def test_primary_never_stamps_before_its_parent() -> None:
    primary = make_replica(0)
    primary.step(Tick(2_000))
    primary.step(RequestSubmitted(request(1)))
    primary.now_ms = 1_000  # e.g. a new primary whose clock lags the old one's
    actions = primary.step(RequestSubmitted(request(2)))
    sent = [a.message for a in actions if isinstance(a, Broadcast)]
    assert [m.metadata for m in sent if isinstance(m, PrePrepare)] == [ProposalMetadata(2_000, 0)]


def test_backup_refuses_a_timestamp_before_its_parent() -> None:
    backup = make_replica(1)
    assert prepares_sent(deliver(backup, pre_prepare(0, 1, BATCH, timestamp_ms=1_000)))
    late = pre_prepare(0, 2, (request(2),), timestamp_ms=999)
    actions = deliver(backup, late)
    assert actions == [
        ReportFault("bad_proposal", 0, "seq 2: timestamp 999 before its parent's 1000")
    ]
    assert backup.fault_counts["bad_proposal"] == 1
    assert ("Prepare", 0, 2) not in backup.own_votes


def test_backup_refuses_a_proposal_that_goes_back_from_a_later_one_sent_first() -> None:
    backup = make_replica(1)
    assert prepares_sent(deliver(backup, pre_prepare(0, 2, (request(2),), timestamp_ms=1_000)))
    actions = deliver(backup, pre_prepare(0, 1, BATCH, timestamp_ms=2_000))
    assert actions == [
        ReportFault("bad_proposal", 0, "seq 1: seq 2 already carries an earlier timestamp")
    ]


def test_backup_refuses_a_fresh_proposal_that_claims_another_view() -> None:
    backup = make_replica(1)
    pp = pre_prepare(0, 1, BATCH, proposed_view=3)
    assert deliver(backup, pp) == [
        ReportFault("bad_proposal", 0, "seq 1: a fresh proposal in view 0 claims view 3")
    ]


def test_bounded_skew_refuses_a_timestamp_too_far_ahead_of_the_local_clock() -> None:
    backup = Replica(make_config(1), signer(1), verify, validate_proposal=bounded_skew(1_000))
    backup.step(Tick(10_000))
    ahead = pre_prepare(0, 1, BATCH, timestamp_ms=11_001)
    assert deliver(backup, ahead) == [
        ReportFault(
            "bad_proposal", 0, "seq 1: timestamp 1001 ms ahead of the clock (bound 1000 ms)"
        )
    ]
    backup.step(Tick(10_001))  # the clock caught up: a retransmission is accepted
    assert prepares_sent(deliver(backup, ahead))


def test_the_validators_are_pure_functions_of_their_arguments() -> None:
    parent = ProposalMetadata(10, 0)
    assert monotonic_timestamps(ProposalMetadata(10, 0), parent, 0) is None
    assert monotonic_timestamps(ProposalMetadata(9, 0), None, 0) is None
    assert monotonic_timestamps(ProposalMetadata(9, 0), parent, 10**9) is not None
    skew = bounded_skew(5)
    assert skew(ProposalMetadata(15, 0), parent, 10) is None
    assert skew(ProposalMetadata(16, 0), parent, 10) is not None
    assert skew(ProposalMetadata(9, 0), parent, 10) is not None


def test_a_refused_proposal_keeps_the_timer_so_an_insisting_primary_is_replaced() -> None:
    backup = make_replica(1)  # knows no pending request: only the refusal is work
    deliver(backup, pre_prepare(0, 1, BATCH, proposed_view=2))
    out = [a for _ in range(10) for a in backup.step(Tick(0))]
    sent = [a.message for a in out if isinstance(a, Broadcast)]
    assert [m.new_view for m in sent if isinstance(m, ViewChange)] == [1]


def timed_cert(seq: int, timestamp_ms: int, batch: Batch) -> PreparedCertificate:
    pp = pre_prepare(0, seq, batch, timestamp_ms=timestamp_ms)
    prepares = tuple(signed(Prepare(0, seq, pp.digest, s)) for s in (1, 2))
    return PreparedCertificate(pp, prepares)


def test_new_view_keeps_metadata_and_null_batches_inherit_the_previous_timestamp() -> None:
    first = timed_cert(1, 700, BATCH)
    third = timed_cert(3, 900, (request(3),))
    vcs = tuple(
        signed(ViewChange(1, 0, bytes(32), (), (first, third) if s == 2 else (), s))
        for s in (1, 2, 3)
    )
    plan = plan_new_view(vcs, make_config(1))
    null = ProposalMetadata(700, 1)
    assert [(s, m) for s, _, _, m in plan.batches] == [
        (1, ProposalMetadata(700, 0)),
        (2, null),
        (3, ProposalMetadata(900, 0)),
    ]
    assert plan.batches[1][1] == proposal_digest(NULL_BATCH, null, TEST_CHAIN_ID)
    gap_first = tuple(
        signed(ViewChange(1, 0, bytes(32), (), (third,) if s == 2 else (), s)) for s in (1, 2, 3)
    )
    assert plan_new_view(gap_first, make_config(1)).batches[0][3] == ProposalMetadata(0, 1)


def test_a_re_issued_batch_is_prepared_with_its_original_metadata() -> None:
    vcs = tuple(
        signed(ViewChange(1, 0, bytes(32), (), (timed_cert(1, 700, BATCH),) if s == 2 else (), s))
        for s in (1, 2, 3)
    )
    new_primary = make_replica(1)
    for vc in vcs:
        new_primary.step(MessageReceived(vc.sender, vc))
    assert new_primary.view_active and new_primary.view == 1
    nv = new_primary.new_view_message
    assert nv is not None and nv.pre_prepares[0].metadata == ProposalMetadata(700, 0)
    backup = make_replica(2)
    actions = backup.step(MessageReceived(1, nv))
    assert prepares_sent(actions) == [
        signed(Prepare(1, 1, proposal_digest(BATCH, ProposalMetadata(700, 0), TEST_CHAIN_ID), 2))
    ]
    assert backup.fault_counts["bad_proposal"] == 0


def test_metadata_travels_the_wire_and_shape_refuses_a_malformed_one() -> None:
    pp = pre_prepare(0, 1, BATCH, timestamp_ms=1_234)
    assert decode_message(encode_message(pp)) == pp
    sizes = {"signature_bytes": SIGNATURE_BYTES}
    assert shape_problem(replace(pp, metadata=ProposalMetadata(-1, 0)), **sizes) == (
        "metadata is not a timestamp and view of unsigned 64-bit integers"
    )
    assert shape_problem(replace(pp, metadata=(1, 0)), **sizes) is not None
