"""``ledger.pending_changes`` against the two views built in full: at every position
of the walk, a key not in ``differing`` holds the same value in both."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.pending_changes import PendingChanges

KEYS = [bytes([k]) for k in range(5)]
VALUES = st.sampled_from([None, b"a", b"b", b"c"])
DELTAS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)
Delta = dict[bytes, bytes | None]
FATES = st.one_of(
    st.tuples(st.just("removed"), DELTAS, st.none()),
    st.tuples(st.just("kept"), DELTAS, st.none()),
    st.tuples(st.just("replaced"), DELTAS, DELTAS),
)


def _agrees(changes: PendingChanges, old: Delta, new: Delta) -> None:
    for key in KEYS:
        if key not in changes.differing:
            assert old.get(key) == new.get(key), key


@settings(max_examples=400, deadline=None)
@given(
    state=st.dictionaries(st.sampled_from(KEYS), st.sampled_from([b"a", b"b", b"c"])),
    block=DELTAS,
    walk=st.lists(FATES, max_size=12),
)
def test_keys_outside_differing_agree_at_every_position(
    state: Delta, block: Delta, walk: list[tuple[str, Delta, Delta | None]]
) -> None:
    old_view, new_view = dict(state), state | block
    changes = PendingChanges(block)
    _agrees(changes, old_view, new_view)
    for fate, delta, after in walk:
        old_view |= delta
        if fate == "removed":
            changes.removed(delta)
        elif fate == "kept":
            new_view |= delta
            changes.kept(delta)
        else:
            assert after is not None
            new_view |= after
            changes.replaced(delta, after)
        _agrees(changes, old_view, new_view)


def test_a_senders_last_committed_write_makes_its_nonce_agree_again() -> None:
    """The common case under load: the block committed a sender's txs up to nonce 3,
    whose pending deltas wrote 1, 2, 3; after the last, its survivors read alike."""
    account = b"acct"
    changes = PendingChanges({account: b"3"})
    assert not changes.same_reads({account: b"3"})
    for nonce in (b"1", b"2"):
        changes.removed({account: nonce})
        assert account in changes.differing
    changes.removed({account: b"3"})
    assert changes.same_reads({account: b"3"})
    changes.kept({account: b"4"})  # a survivor: both views get its write
    assert changes.same_reads({account: b"4"})
    changes.replaced({account: b"5"}, {account: b"6"})  # one re-run to other writes
    assert not changes.same_reads({account: b"6"})
