"""What one slot of the message log holds, and why a byzantine validator cannot grow it.

Review finding: one byzantine validator could grow a slot without bound.

A pre-prepare for a view the replica is not running is kept (its batch may be
named by a commit certificate; a future view's one is voted on later). A
byzantine replica is the primary of every n-th view, so it can sign a
pre-prepare, each with a full batch, for every one of its views below ours
and up to the view bound, at every seq in the window. Parked pre-prepares are
now capped per slot.

Issue 8 §1.1: the old cap on batches per slot (8) let junk crowd out a batch
the protocol needed, which halted the network. A batch is needed when it is
named by the pre-prepare this replica voted for (or, as primary, proposed), a
verified NEW-VIEW, a prepared certificate, or a commit quorum: those are never
refused. Anything else a primary signs (pre-prepares of views we are not
running, equivocations) is a spare, bounded per view (one primary, so one
signer, per view) and evicted first; a needed batch that is missing is fetched
by digest.
"""

from __future__ import annotations

from dataclasses import replace

from consensus.actions import Broadcast, Execute, ReportFault, Send
from consensus.events import MessageReceived, Tick
from consensus.log import MAX_PARKED_PRE_PREPARES, MAX_SPARE_BATCHES_PER_VIEW, MAX_SPARE_VIEWS
from consensus.messages import BatchReply, Commit, FetchBatch, Request
from consensus.sim.fixtures import (
    Cluster,
    commit,
    digest_of,
    make_replica,
    metadata_of,
    pre_prepare,
    request,
    signed,
)

BATCH = (request(1),)


def test_future_and_old_view_pre_prepares_of_one_primary_are_capped() -> None:
    backup = make_replica(1, view_bound=400)
    backup.view = 200  # many old views of replica 2 below, many future ones above
    for view in range(2, 600, 4):  # every view whose primary is replica 2
        pp = pre_prepare(view, 1, (request(view),))
        backup.step(MessageReceived(2, pp))
    slot = backup.log.slots[1]
    assert len(slot.pre_prepares) <= MAX_PARKED_PRE_PREPARES
    assert slot.batches == {}  # none of them is needed
    assert len(slot.spare) <= MAX_SPARE_VIEWS
    assert all(len(b) <= MAX_SPARE_BATCHES_PER_VIEW for b in slot.spare.values())
    assert "future_view" in backup.ignored_counts and "stale_view" in backup.ignored_counts


def test_the_current_view_pre_prepare_is_still_voted_when_the_slot_is_full() -> None:
    backup = make_replica(1, view_bound=400)
    backup.view = 200
    for view in range(202, 202 + 4 * MAX_PARKED_PRE_PREPARES * 2, 4):
        backup.step(MessageReceived(2, pre_prepare(view, 1, (request(view),))))
    actions = backup.step(MessageReceived(0, pre_prepare(200, 1, (request(1),))))
    assert ("Prepare", 200, 1) in backup.own_votes
    assert actions


def junk(index: int) -> tuple[Request, ...]:
    return (Request(b"junk-%d" % index, b"junk payload %d" % index),)


def test_junk_pre_prepares_from_a_future_primary_do_not_halt_the_network() -> None:
    # The scenario: replica 3, primary of view 3 (within view_bound),
    # sends every honest replica 8 signed junk PRE-PREPAREs for (3, 1). The
    # real batch of (0, 1) could then never be stored: heights [0, 0, 0, 3].
    cluster = Cluster()
    for target in (0, 1, 2):
        for index in range(8):
            cluster.replicas[target].step(MessageReceived(3, pre_prepare(3, 1, junk(index))))
    for i in range(3):
        cluster.submit(request(i))
    cluster.tick(50)
    assert cluster.heights()[:3] == [3, 3, 3]
    assert all(r.view == 0 for r in cluster.replicas[:3])


def commits_for(seq: int, batch: tuple[Request, ...], senders: tuple[int, ...]) -> list[Commit]:
    return [commit(0, seq, batch, s) for s in senders]


def test_a_commit_quorum_without_its_batch_fetches_it_by_digest_and_executes() -> None:
    learner = make_replica(3)
    batch = (request(1),)
    actions = [
        a for c in commits_for(1, batch, (0, 1, 2)) for a in learner.step(MessageReceived(0, c))
    ]
    ask = signed(FetchBatch(1, digest_of(batch), 3))
    assert Broadcast(ask) in actions
    assert not any(isinstance(a, Execute) for a in actions)
    # Asked again each retransmission interval until it arrives.
    again = [a for _ in range(5) for a in learner.step(Tick(0))]
    assert again.count(Broadcast(ask)) == 1
    # A reply with another batch under the digest is refused and charged to its signer.
    wrong = signed(BatchReply(1, digest_of(batch), (request(2),), metadata_of(0), 1))
    assert learner.step(MessageReceived(1, wrong)) == [
        ReportFault("digest_mismatch", 1, "batch reply for seq 1")
    ]
    right = signed(BatchReply(1, digest_of(batch), batch, metadata_of(0), 2))
    executed = [a for a in learner.step(MessageReceived(2, right)) if isinstance(a, Execute)]
    assert [(e.seq, e.batch) for e in executed] == [(1, batch)]
    # Once held, a second reply is not asked for.
    assert learner.step(MessageReceived(2, right)) == []
    assert learner.ignored_counts["unrequested_batch"] == 1


def test_a_reply_whose_metadata_differs_from_the_digest_is_refused() -> None:
    # The fetched unit is (batch, metadata): the digest covers both.
    learner = make_replica(3)
    for c in commits_for(1, BATCH, (0, 1, 2)):
        learner.step(MessageReceived(0, c))
    later = signed(BatchReply(1, digest_of(BATCH), BATCH, metadata_of(0, timestamp_ms=5), 1))
    assert learner.step(MessageReceived(1, later)) == [
        ReportFault("digest_mismatch", 1, "batch reply for seq 1")
    ]
    assert learner.last_executed == 0


def test_a_spare_batch_named_by_a_commit_quorum_is_used_without_fetching() -> None:
    learner = make_replica(3)
    learner.view = 1  # the view-0 pre-prepare is parked as a spare
    learner.step(MessageReceived(0, pre_prepare(0, 1, BATCH)))
    assert learner.log.slots[1].batches == {}
    actions = [
        a for c in commits_for(1, BATCH, (0, 1, 2)) for a in learner.step(MessageReceived(0, c))
    ]
    assert [(a.seq, a.batch) for a in actions if isinstance(a, Execute)] == [(1, BATCH)]
    assert learner.log.slots[1].batches == {digest_of(BATCH): BATCH}


def test_a_peer_answers_an_authentic_fetch_within_its_rate_limit() -> None:
    holder = make_replica(1)  # window 8: at most 8 replies per peer and interval
    holder.step(MessageReceived(0, pre_prepare(0, 1, BATCH)))
    ask = signed(FetchBatch(1, digest_of(BATCH), 3))
    reply = signed(BatchReply(1, digest_of(BATCH), BATCH, metadata_of(0), 1))
    assert holder.step(MessageReceived(3, ask)) == [Send(3, reply)]
    forged = replace(ask, sender=2)
    assert holder.step(MessageReceived(3, forged)) == [
        ReportFault("bad_signature", 3, "fetch-batch")
    ]
    unknown = signed(FetchBatch(1, digest_of((request(7),)), 3))
    assert holder.step(MessageReceived(3, unknown)) == []
    assert holder.ignored_counts["unknown_batch"] == 1
    answered = sum(len(holder.step(MessageReceived(3, ask))) for _ in range(20))
    assert answered == 7  # 8 per interval, one already spent
    assert holder.ignored_counts["fetch_rate_limited"] == 13
    for _ in range(5):
        holder.step(Tick(0))
    assert holder.step(MessageReceived(3, ask)) == [Send(3, reply)]
