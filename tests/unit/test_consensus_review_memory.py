"""Review finding: one byzantine validator could grow a slot without bound.

A pre-prepare for a view the replica is not running is kept (its batch may be
named by a commit certificate; a future view's one is voted on later). A
byzantine replica is the primary of every n-th view, so it can sign a
pre-prepare, each with a full batch, for every one of its views below ours
and up to the view bound, at every seq in the window. Parked pre-prepares are
now capped per slot; batches were already capped (MAX_BATCHES_PER_SLOT).
"""

from __future__ import annotations

from consensus.events import MessageReceived
from consensus.log import MAX_BATCHES_PER_SLOT, MAX_PARKED_PRE_PREPARES
from consensus.sim.fixtures import make_replica, pre_prepare, request


def test_future_and_old_view_pre_prepares_of_one_primary_are_capped() -> None:
    backup = make_replica(1, view_bound=400)
    backup.view = 200  # many old views of replica 2 below, many future ones above
    for view in range(2, 600, 4):  # every view whose primary is replica 2
        pp = pre_prepare(view, 1, (request(view),))
        backup.step(MessageReceived(2, pp))
    slot = backup.log.slots[1]
    assert len(slot.pre_prepares) <= MAX_PARKED_PRE_PREPARES
    assert len(slot.batches) <= MAX_BATCHES_PER_SLOT
    assert "future_view" in backup.ignored_counts and "stale_view" in backup.ignored_counts


def test_the_current_view_pre_prepare_is_still_voted_when_the_slot_is_full() -> None:
    backup = make_replica(1, view_bound=400)
    backup.view = 200
    for view in range(202, 202 + 4 * MAX_PARKED_PRE_PREPARES * 2, 4):
        backup.step(MessageReceived(2, pre_prepare(view, 1, (request(view),))))
    actions = backup.step(MessageReceived(0, pre_prepare(200, 1, (request(1),))))
    assert ("Prepare", 200, 1) in backup.own_votes
    assert actions
