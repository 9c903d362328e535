"""Checkpoints, garbage collection, watermarks, divergence and the state-transfer trigger."""

from __future__ import annotations

from consensus.actions import Broadcast, Diverged, Persist, RequestStateTransfer
from consensus.events import (
    ClientBatchReady,
    Executed,
    MessageReceived,
    RequestSubmitted,
    StateTransferCompleted,
    Tick,
)
from consensus.persistence import StableCheckpointRecord
from consensus.replica import Replica
from consensus.sim.fixtures import Cluster, checkpoint, make_replica, pre_prepare, request

ROOT = b"r" * 32


def executed_up_to(replica: Replica, height: int) -> None:
    """Pretend the replica handed out ``height`` blocks (white-box: skips the votes)."""
    replica.last_executed = height


def test_executed_at_a_boundary_broadcasts_a_checkpoint() -> None:
    replica = make_replica(1)
    executed_up_to(replica, 4)
    assert replica.step(Executed(3, b"q" * 32)) == []
    assert replica.step(Executed(4, ROOT)) == [Broadcast(checkpoint(4, ROOT, 1))]


def test_two_f_plus_one_matching_checkpoints_make_it_stable_and_collect_garbage() -> None:
    replica = make_replica(1)
    replica.step(MessageReceived(0, pre_prepare(0, 2, (request(2),))))
    executed_up_to(replica, 4)
    replica.step(Executed(4, ROOT))
    assert replica.step(MessageReceived(2, checkpoint(4, ROOT, 2))) == []
    actions = replica.step(MessageReceived(3, checkpoint(4, ROOT, 3)))
    proof = (checkpoint(4, ROOT, 1), checkpoint(4, ROOT, 2), checkpoint(4, ROOT, 3))
    assert actions == [Persist((StableCheckpointRecord(4, ROOT, proof),))]
    assert (replica.stable_seq, replica.high_watermark) == (4, 12)
    assert 2 not in replica.log.slots
    assert replica.own_votes == {}


def test_mismatching_checkpoints_do_not_make_it_stable() -> None:
    replica = make_replica(1)
    for sender in (0, 2):
        replica.step(MessageReceived(sender, checkpoint(4, ROOT, sender)))
    replica.step(MessageReceived(3, checkpoint(4, b"s" * 32, 3)))
    assert replica.stable_seq == 0


def test_own_root_differing_from_a_stable_checkpoint_stops_the_replica() -> None:
    replica = make_replica(1)
    executed_up_to(replica, 4)
    replica.step(Executed(4, b"mine" + bytes(28)))
    replica.step(MessageReceived(0, checkpoint(4, ROOT, 0)))
    replica.step(MessageReceived(2, checkpoint(4, ROOT, 2)))
    actions = replica.step(MessageReceived(3, checkpoint(4, ROOT, 3)))
    assert actions == [Diverged(4, b"mine" + bytes(28), ROOT)]
    assert replica.stopped
    assert replica.step(Tick(0)) == []
    assert replica.step(RequestSubmitted(request(1))) == []


def test_executing_a_height_after_it_became_stable_with_another_root_diverges() -> None:
    replica = make_replica(1)
    for sender in (0, 2, 3):
        replica.step(MessageReceived(sender, checkpoint(4, ROOT, sender)))
    executed_up_to(replica, 4)
    replica.state_transfer_target = None
    assert replica.step(Executed(4, b"x" * 32)) == [Diverged(4, b"x" * 32, ROOT)]


def test_stable_checkpoint_beyond_our_height_triggers_state_transfer() -> None:
    replica = make_replica(1)
    replica.step(MessageReceived(0, checkpoint(8, ROOT, 0)))
    replica.step(MessageReceived(2, checkpoint(8, ROOT, 2)))
    actions = replica.step(MessageReceived(3, checkpoint(8, ROOT, 3)))
    proof = (checkpoint(8, ROOT, 0), checkpoint(8, ROOT, 2), checkpoint(8, ROOT, 3))
    assert actions == [
        Persist((StableCheckpointRecord(8, ROOT, proof),)),
        RequestStateTransfer(8, ROOT, (0, 2, 3)),
    ]
    assert replica.state_transfer_target == 8
    # Asked again on each retransmission tick until it completes.
    retried = [a for _ in range(5) for a in replica.step(Tick(0))]
    assert RequestStateTransfer(8, ROOT, (0, 2, 3)) in retried


def test_state_transfer_completion_resumes_and_deduplicates() -> None:
    replica = make_replica(1)
    for sender in (0, 2, 3):
        replica.step(MessageReceived(sender, checkpoint(8, ROOT, sender)))
    replica.step(RequestSubmitted(request(5)))
    assert replica.step(StateTransferCompleted(8, ROOT, (b"req-5",))) == []
    assert (replica.last_executed, replica.state_transfer_target) == (8, None)
    assert replica.pending == {}
    assert replica.step(StateTransferCompleted(8, ROOT)) == []
    assert replica.ignored_counts["stale_state_transfer"] == 1


def test_state_transfer_to_a_foreign_root_diverges() -> None:
    replica = make_replica(1)
    for sender in (0, 2, 3):
        replica.step(MessageReceived(sender, checkpoint(8, ROOT, sender)))
    assert replica.step(StateTransferCompleted(8, b"z" * 32)) == [Diverged(8, b"z" * 32, ROOT)]


def test_primary_resumes_proposing_when_the_window_moves() -> None:
    cluster = Cluster(max_batch_size=1)
    primary = cluster.replicas[0]
    # More requests than the window holds: proposals resume as checkpoints stabilise.
    primary_requests = tuple(request(i) for i in range(20))
    for i in range(4):
        cluster._queue.append((i, ClientBatchReady(primary_requests)))
    cluster.run()
    assert cluster.heights() == [20] * 4
    assert primary.stable_seq == 20
    assert [a.seq for a in cluster.executed[2]] == list(range(1, 21))


def test_lagging_replica_catches_up_by_state_transfer_after_others_collect_garbage() -> None:
    cluster = Cluster()
    cluster.drop_to = {3}
    laggard = cluster.replicas[3]
    for i in range(12):
        cluster.submit(request(i))
    cluster.drop_to = set()
    assert laggard.last_executed == 0
    requested = [a for a in cluster.actions[3] if isinstance(a, RequestStateTransfer)]
    assert requested == []
    assert cluster.replicas[0].stable_seq == 12
    cluster.tick(5)  # retransmission relays the stable checkpoint proof
    requested = [a for a in cluster.actions[3] if isinstance(a, RequestStateTransfer)]
    assert requested[0] == RequestStateTransfer(12, cluster.roots[0][12], (0, 1, 2))
    laggard.step(StateTransferCompleted(12, cluster.roots[0][12]))
    assert laggard.last_executed == 12
