"""Every rejection rule of the message handlers: what is dropped, how it is counted,
and that a rejected message changes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.actions import Broadcast, Persist, ReportFault
from consensus.events import MessageReceived
from consensus.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    Request,
    ViewChange,
)
from consensus.persistence import VoteRecord
from consensus.replica import Replica
from consensus.sim.fixtures import (
    checkpoint,
    commit,
    digest_of,
    make_replica,
    metadata_of,
    pre_prepare,
    prepare,
    request,
    signed,
)

BATCH = (request(1),)
OTHER = (request(2),)


def fault(kind: str, peer: int, detail: str) -> list[ReportFault]:
    return [ReportFault(kind, peer, detail)]


def deliver(replica: Replica, message: Message, peer: int | None = None) -> list[object]:
    sender = message.sender if peer is None else peer
    return list(replica.step(MessageReceived(sender, message)))


def forged(message: Message) -> Message:
    return replace(message, signature=b"\x00" * 16)


# --- any message -----------------------------------------------------------


def test_non_member_sender_is_a_fault() -> None:
    backup = make_replica(1)
    message = replace(prepare(0, 1, BATCH, 2), sender=7)
    assert deliver(backup, message, peer=2) == fault("not_member", 2, "sender 7 is not a validator")


def test_own_message_echoed_back_is_ignored() -> None:
    backup = make_replica(1)
    assert deliver(backup, prepare(0, 1, BATCH, 1), peer=2) == []
    assert backup.ignored_counts["own_message"] == 1


# --- pre-prepare ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (pre_prepare(18, 1, BATCH), fault("absurd_view", 2, "view 18 is beyond 0 + bound")),
        (
            pre_prepare(0, 1, BATCH, sender=2),
            fault("not_primary", 2, "pre-prepare from 2 in view 0"),
        ),
        (forged(pre_prepare(0, 1, BATCH)), fault("bad_signature", 0, "pre-prepare")),
        (
            signed(PrePrepare(0, 1, digest_of(OTHER), BATCH, metadata_of(0), 0)),
            fault("digest_mismatch", 0, "pre-prepare seq 1"),
        ),
        (pre_prepare(0, 1, ()), fault("invalid_batch", 0, "empty batch outside a new-view")),
        (
            pre_prepare(0, 1, tuple(request(i) for i in range(5))),
            fault("invalid_batch", 0, "batch too large"),
        ),
        (
            pre_prepare(0, 1, (request(1), request(1))),
            fault("invalid_batch", 0, "batch repeats a request"),
        ),
        (
            pre_prepare(0, 1, (Request(b"r", bytes((1 << 16) + 1)),)),
            fault("invalid_batch", 0, "malformed request in batch"),
        ),
    ],
    ids=["absurd", "not-primary", "bad-sig", "digest", "empty", "large", "repeat", "malformed"],
)
def test_pre_prepare_faults(message: PrePrepare, expected: list[ReportFault]) -> None:
    backup = make_replica(1)
    assert deliver(backup, message) == expected
    assert backup.log.slots.get(1) is None or not backup.log.slots[1].pre_prepares
    assert backup.own_votes == {}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (pre_prepare(0, 9, BATCH), "outside_watermarks"),
        (pre_prepare(0, 0, BATCH), "outside_watermarks"),
        (pre_prepare(2, 1, BATCH), "future_view"),
    ],
)
def test_pre_prepare_ignored(message: PrePrepare, reason: str) -> None:
    backup = make_replica(1)
    assert deliver(backup, message) == []
    assert backup.ignored_counts[reason] == 1
    assert backup.own_votes == {}


def test_future_view_pre_prepare_is_kept_and_voted_once_we_run_that_view() -> None:
    backup = make_replica(1)
    pp = pre_prepare(2, 1, BATCH)
    assert deliver(backup, pp) == []
    assert backup.ignored_counts["future_view"] == 1
    assert backup.log.slots[1].batches == {digest_of(BATCH, 2): BATCH}
    backup.view = 2  # as if NEW-VIEW for view 2 had been accepted
    p = prepare(2, 1, BATCH, 1)
    assert deliver(backup, pp) == [Persist((VoteRecord(p),)), Broadcast(p)]
    assert deliver(backup, pp) == []
    assert backup.ignored_counts["duplicate"] == 1


def test_duplicate_pre_prepare_is_ignored_without_a_second_vote() -> None:
    backup = make_replica(1)
    deliver(backup, pre_prepare(0, 1, BATCH))
    assert deliver(backup, pre_prepare(0, 1, BATCH)) == []
    assert backup.ignored_counts["duplicate"] == 1


def test_equivocating_pre_prepare_blames_the_primary_even_when_relayed() -> None:
    backup = make_replica(1)
    deliver(backup, pre_prepare(0, 1, BATCH))
    assert deliver(backup, pre_prepare(0, 1, OTHER), peer=3) == fault(
        "equivocation", 0, "two pre-prepares for (0, 1)"
    )
    assert backup.own_votes == {("Prepare", 0, 1): digest_of(BATCH)}
    # The second batch is remembered: a commit certificate may name it.
    assert digest_of(OTHER) in backup.log.slots[1].batches


def test_pre_prepare_repeating_a_committed_request_is_refused() -> None:
    backup = make_replica(1)
    backup.committed_ids.add(b"req-1", 0)
    assert deliver(backup, pre_prepare(0, 1, BATCH)) == fault(
        "duplicate_request", 0, "request repeated at seq 1"
    )


def test_pre_prepare_repeating_an_in_flight_request_is_refused() -> None:
    backup = make_replica(1)
    deliver(backup, pre_prepare(0, 1, BATCH))
    assert deliver(backup, pre_prepare(0, 2, BATCH)) == fault(
        "duplicate_request", 0, "request repeated at seq 2"
    )


def test_old_view_pre_prepare_is_kept_for_its_batch_but_not_voted() -> None:
    backup = make_replica(1)
    backup.view = 1
    assert deliver(backup, pre_prepare(0, 1, BATCH)) == []
    assert backup.ignored_counts["stale_view"] == 1
    assert backup.log.slots[1].batches == {digest_of(BATCH): BATCH}
    assert backup.own_votes == {}


# --- prepare -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (prepare(17, 1, BATCH, 2), fault("absurd_view", 2, "view 17 is beyond 0 + bound")),
        (prepare(0, 1, BATCH, 0), fault("prepare_from_primary", 0, "view 0")),
        (forged(prepare(0, 1, BATCH, 2)), fault("bad_signature", 2, "prepare")),
    ],
    ids=["absurd", "from-primary", "bad-sig"],
)
def test_prepare_faults(message: Prepare, expected: list[ReportFault]) -> None:
    backup = make_replica(1)
    assert deliver(backup, message) == expected
    assert 1 not in backup.log.slots or not backup.log.slots[1].prepares


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (prepare(0, 9, BATCH, 2), "outside_watermarks"),
        (prepare(1, 1, BATCH, 2), "future_view"),
    ],
)
def test_prepare_ignored(message: Prepare, reason: str) -> None:
    backup = make_replica(1)
    assert deliver(backup, message) == []
    assert backup.ignored_counts[reason] == 1


def test_prepare_of_an_old_view_is_ignored() -> None:
    backup = make_replica(1)
    backup.view = 2
    assert deliver(backup, prepare(1, 1, BATCH, 2)) == []
    assert backup.ignored_counts["stale_view"] == 1


def test_prepare_while_changing_view_is_ignored() -> None:
    backup = make_replica(1)
    backup.view_active = False
    assert deliver(backup, prepare(0, 1, BATCH, 2)) == []
    assert backup.ignored_counts["stale_view"] == 1


def test_duplicate_and_conflicting_prepares() -> None:
    backup = make_replica(1)
    deliver(backup, prepare(0, 1, BATCH, 2))
    assert deliver(backup, prepare(0, 1, BATCH, 2)) == []
    assert backup.ignored_counts["duplicate"] == 1
    assert deliver(backup, prepare(0, 1, OTHER, 2)) == fault(
        "conflicting_vote", 2, "two prepares for (0, 1)"
    )
    assert backup.log.slots[1].prepares[0][2] == prepare(0, 1, BATCH, 2)


# --- commit --------------------------------------------------------------------


def test_commit_faults_and_ignores() -> None:
    backup = make_replica(1)
    assert deliver(backup, commit(17, 1, BATCH, 2)) == fault(
        "absurd_view", 2, "view 17 is beyond 0 + bound"
    )
    assert deliver(backup, forged(commit(0, 1, BATCH, 2))) == fault("bad_signature", 2, "commit")
    assert deliver(backup, commit(0, 9, BATCH, 2)) == []
    assert backup.ignored_counts["outside_watermarks"] == 1
    deliver(backup, commit(0, 1, BATCH, 2))
    assert deliver(backup, commit(0, 1, BATCH, 2)) == []
    assert backup.ignored_counts["duplicate"] == 1


def test_conflicting_commits_are_reported_and_a_flood_cannot_evict_a_supported_one() -> None:
    backup = make_replica(1)
    deliver(backup, commit(0, 1, BATCH, 3))
    deliver(backup, commit(0, 1, BATCH, 2))  # corroborates replica 3's digest
    assert deliver(backup, commit(0, 1, OTHER, 3)) == fault(
        "conflicting_vote", 3, "two commits for (0, 1)"
    )
    for i in range(3, 6):
        junk = signed(Commit(0, 1, bytes([i]) * 32, 3))
        deliver(backup, junk)
    kept = backup.log.slots[1].commits[0][3]
    assert digest_of(BATCH) in kept
    assert len(kept) == 2


# --- checkpoint ----------------------------------------------------------------


def test_checkpoint_rules() -> None:
    backup = make_replica(1)
    root = b"r" * 32
    assert deliver(backup, checkpoint(3, root, 2)) == fault("bad_checkpoint", 2, "checkpoint at 3")
    assert deliver(backup, checkpoint(0, root, 2)) == fault("bad_checkpoint", 2, "checkpoint at 0")
    assert deliver(backup, forged(checkpoint(4, root, 2))) == fault(
        "bad_signature", 2, "checkpoint"
    )
    deliver(backup, checkpoint(4, root, 2))
    assert deliver(backup, checkpoint(4, root, 2)) == []
    assert backup.ignored_counts["duplicate"] == 1
    assert deliver(backup, checkpoint(4, b"s" * 32, 2)) == fault(
        "conflicting_checkpoint", 2, "two roots at 4"
    )
    backup.stable_seq = 4
    assert deliver(backup, checkpoint(4, root, 3)) == []
    assert backup.ignored_counts["stale_checkpoint"] == 1


def test_checkpoint_memory_is_bounded_per_sender() -> None:
    backup = make_replica(1)
    for seq in range(4, 100, 4):
        deliver(backup, checkpoint(seq, b"r" * 32, 2))
    assert sorted(backup.checkpoints.by_sender[2]) == [84, 88, 92, 96]


# --- view-change and new-view --------------------------------------------------


def view_change(
    new_view: int, sender: int, stable_seq: int = 0, stable_root: bytes = bytes(32)
) -> ViewChange:
    return signed(ViewChange(new_view, stable_seq, stable_root, (), (), sender))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (view_change(17, 2), fault("absurd_view", 2, "view 17 is beyond 0 + bound")),
        (forged(view_change(1, 2)), fault("bad_signature", 2, "view-change")),
        (
            view_change(1, 2, stable_root=b"x" * 32),
            fault("invalid_view_change", 2, "genesis checkpoint carries a proof or a foreign root"),
        ),
        (
            view_change(1, 2, stable_seq=3),
            fault("invalid_view_change", 2, "checkpoint 3 is not on a checkpoint boundary"),
        ),
        (
            view_change(1, 2, stable_seq=4),
            fault("invalid_view_change", 2, "checkpoint proof lacks 2f+1 distinct signers"),
        ),
    ],
    ids=["absurd", "bad-sig", "foreign-genesis", "off-boundary", "no-proof"],
)
def test_view_change_faults(message: ViewChange, expected: list[ReportFault]) -> None:
    backup = make_replica(1)
    assert deliver(backup, message) == expected
    assert backup.view_changes == {}


def test_view_change_to_view_zero_is_invalid() -> None:
    backup = make_replica(1)
    backup.view, backup.view_active = 0, False  # waiting for view 0 cannot happen, but guard
    assert deliver(backup, view_change(0, 2)) == fault(
        "invalid_view_change", 2, "view-change to view 0"
    )


def test_stale_duplicate_and_conflicting_view_changes() -> None:
    backup = make_replica(1)
    backup.view = 2
    assert deliver(backup, view_change(1, 2)) == []
    assert backup.ignored_counts["stale_view_change"] == 1
    deliver(backup, view_change(3, 2))
    assert deliver(backup, view_change(3, 2)) == []
    assert backup.ignored_counts["duplicate"] == 1
    other = view_change(3, 2, stable_root=bytes(31) + b"\x01")
    assert deliver(backup, other)[0] == ReportFault(
        "invalid_view_change", 2, "genesis checkpoint carries a proof or a foreign root"
    )


def test_new_view_rules() -> None:
    backup = make_replica(2)
    assert deliver(backup, signed(NewView(17, (), (), 1))) == fault(
        "absurd_view", 1, "view 17 is beyond 0 + bound"
    )
    nv = signed(NewView(1, (), (), 1))
    assert deliver(backup, forged(nv)) == fault("bad_signature", 1, "new-view")
    assert deliver(backup, nv) == fault(
        "invalid_new_view", 1, "new-view lacks 2f+1 distinct view-changes"
    )
    assert deliver(backup, signed(NewView(1, (), (), 3))) == fault(
        "invalid_new_view", 3, "new-view not from the primary"
    )
    assert deliver(backup, signed(NewView(0, (), (), 0))) == []
    assert backup.ignored_counts["stale_new_view"] == 1
    assert (backup.view, backup.view_active) == (0, True)


def test_checkpoint_sender_checks_use_the_signed_sender() -> None:
    backup = make_replica(1)
    message = replace(checkpoint(4, b"r" * 32, 2), sender=3)
    assert deliver(backup, message, peer=2) == fault("bad_signature", 2, "checkpoint")
    assert isinstance(message, Checkpoint)
