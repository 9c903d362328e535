"""Issue 8 §1.7: the committed request-id set is a window of heights.

It used to keep every id ever committed (~98 B each, for good), and restarts
and state transfers handed the whole set back. Now ids older than
``request_id_window_heights`` are forgotten; the ledger refuses a replay of
anything older (nonces, spent inputs), so only a wasted place in a block is
at stake, never a second execution.
"""

from __future__ import annotations

import pytest

from consensus.events import RequestSubmitted, StateTransferCompleted
from consensus.replica import Replica
from consensus.request_window import RecentIds
from consensus.sim.fixtures import Cluster, make_config, make_replica, request
from consensus.sim.keys import signer, verify

WINDOW = 8


def test_a_long_run_keeps_only_the_window() -> None:
    cluster = Cluster(request_id_window_heights=WINDOW)
    for i in range(40):
        cluster.submit(request(i))
    assert cluster.heights() == [40] * 4
    for replica in cluster.replicas:
        assert len(replica.committed_ids) == WINDOW  # heights 33..40, one request each
        assert request(39).request_id in replica.committed_ids
        assert request(32).request_id in replica.committed_ids
        assert request(31).request_id not in replica.committed_ids


def test_a_recent_request_is_still_a_duplicate_and_an_expired_one_is_the_ledgers() -> None:
    cluster = Cluster(request_id_window_heights=WINDOW)
    for i in range(20):
        cluster.submit(request(i))
    backup = cluster.replicas[1]
    backup.step(RequestSubmitted(request(19)))
    assert backup.ignored_counts["duplicate_request"] == 1
    backup.step(RequestSubmitted(request(0)))
    assert request(0).request_id in backup.pending  # ordered again; execute_batch rejects it


def test_restart_and_state_transfer_take_the_window_only() -> None:
    ids = tuple(request(i).request_id for i in range(3))
    restored = Replica.restore(
        make_config(1, request_id_window_heights=WINDOW),
        signer(1),
        verify,
        records=(),
        executed_seq=40,
        state_root=bytes(32),
        committed_request_ids=ids,
    )
    assert restored.committed_ids.heights == {i: 40 for i in ids}
    replica = make_replica(1, request_id_window_heights=WINDOW)
    replica.stable_seq = 0
    replica.step(StateTransferCompleted(48, bytes(32), ids))
    assert replica.committed_ids.heights == {i: 48 for i in ids}
    replica.remember_committed((), 56)
    assert replica.committed_ids.heights == {i: 48 for i in ids}
    replica.last_executed = 57
    replica.remember_committed((), 57)
    assert len(replica.committed_ids) == 0


def test_recent_ids_expire_oldest_first_and_keep_the_first_height() -> None:
    window = RecentIds()
    window.add_all((b"a", b"b"), 1)
    window.add(b"c", 2)
    window.add(b"a", 3)  # a repeat keeps its first height
    window.expire(1)
    assert window.heights == {b"c": 2}
    window.expire(2)
    assert len(window) == 0 and b"c" not in window


def test_the_window_must_cover_the_watermark_window() -> None:
    with pytest.raises(ValueError, match="request_id_window_heights"):
        make_config(1, request_id_window_heights=7)
