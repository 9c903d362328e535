"""Issue 8 §1.7c: retransmission resends only what a peer reports missing.

Every retransmission interval a replica resent the full PRE-PREPARE (with its
batch) of every slot above the stable checkpoint, executed or not: about
5.9 MiB per replica per interval in a healthy cluster under load. Now it
resends only the slots it has not executed yet, and broadcasts a STATUS
(view, last executed height); a peer that executed more answers with the
commit certificates of the heights the sender lacks (digests), and the sender
fetches a missing batch by digest.
"""

from __future__ import annotations

from dataclasses import replace

from consensus.actions import Broadcast, Execute, ReportFault, Send
from consensus.events import ClientBatchReady, MessageReceived, Tick
from consensus.messages import Commit, FetchBatch, Request, Status
from consensus.sim.fixtures import Cluster, make_replica, signed
from consensus.sim.keys import SIGNATURE_BYTES
from consensus.wire import encode_message

SETTINGS = {
    "checkpoint_interval": 8,
    "watermark_window": 16,
    "max_batch_size": 100,
    "max_request_bytes": 1024,
    "retransmit_interval_ticks": 5,
}


def loaded_cluster(slots: int) -> Cluster:
    cluster = Cluster(**SETTINGS)
    requests = tuple(Request(b"r-%05d" % i, b"x" * 1024) for i in range(slots * 100))
    for i in range(4):
        cluster._queue.append((i, ClientBatchReady(requests)))
    cluster.run()
    return cluster


def test_a_healthy_cluster_resends_no_batches_of_executed_slots() -> None:
    cluster = loaded_cluster(12)  # stable at 8, heights 9..12 executed above it
    assert cluster.heights() == [12, 12, 12, 12]
    replica = cluster.replicas[1]
    sent = [a for _ in range(5) for a in replica.step(Tick(0)) if isinstance(a, Broadcast)]
    resent_bytes = sum(len(encode_message(a.message)) for a in sent)
    assert resent_bytes < 2048  # was ~4 x 100 KiB of pre-prepares per interval
    assert any(isinstance(a.message, Status) for a in sent)


def test_a_replica_that_missed_commits_catches_up_from_status_replies() -> None:
    cluster = loaded_cluster(0)
    cluster.drop_to = {3}
    requests = tuple(Request(b"s-%05d" % i, b"y" * 100) for i in range(300))
    for i in range(3):
        cluster._queue.append((i, ClientBatchReady(requests)))
    cluster.run()
    assert cluster.heights() == [3, 3, 3, 0]
    cluster.drop_to = set()
    cluster.tick(12)
    assert cluster.heights() == [3, 3, 3, 3]
    lagging = cluster.actions[3]
    assert any(isinstance(a, Broadcast) and isinstance(a.message, FetchBatch) for a in lagging)
    assert [a.seq for a in cluster.executed[3]] == [1, 2, 3]


def test_status_is_answered_once_per_interval_and_only_when_authentic() -> None:
    cluster = loaded_cluster(2)
    ahead = cluster.replicas[0]
    behind = signed(Status(0, 0, 3))
    replies = ahead.step(MessageReceived(3, behind))
    commits = [a.message for a in replies if isinstance(a, Send)]
    assert all(
        isinstance(c, Commit) and a_to == 3 for c, a_to in zip(commits, [3] * 6, strict=False)
    )
    assert sorted({c.seq for c in commits if isinstance(c, Commit)}) == [1, 2]
    assert ahead.step(MessageReceived(3, behind)) == []
    assert ahead.ignored_counts["status_rate_limited"] == 1
    forged = replace(signed(Status(0, 0, 2)), signature=b"\x00" * SIGNATURE_BYTES)
    assert ahead.step(MessageReceived(2, forged)) == [ReportFault("bad_signature", 2, "status")]
    assert ahead.step(MessageReceived(2, signed(Status(0, 2, 2)))) == []
    assert ahead.ignored_counts["status_not_behind"] == 1
    assert not any(isinstance(a, Execute) for a in replies)
    assert make_replica(1).step(MessageReceived(2, signed(Status(0, 0, 2)))) == []
