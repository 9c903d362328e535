"""``ledger.pending_index`` against the views built in full: when it says every
survivor reads alike after a block, each survivor's recorded reads hold in the
rebuilt view at its place, and the old pending writes minus ``unwritten`` are the
rebuilt view's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.pending_index import PendingIndex

KEYS = [bytes([k]) for k in range(4)]
VALUES = st.sampled_from([None, b"a", b"b"])
Delta = dict[bytes, bytes | None]
TXS = st.lists(
    st.tuples(
        st.sets(st.sampled_from(KEYS), max_size=3),  # the keys it reads
        st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=2),  # what it writes
        st.booleans(),  # whether the block commits it
    ),
    max_size=10,
)
outcomes: Counter[str] = Counter()


class _State:
    def __init__(self, values: Mapping[bytes, bytes | None]) -> None:
        self._values = values

    def get_state(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def iter_state(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        found = ((k, v) for k, v in self._values.items() if v is not None)
        return iter(sorted((k, v) for k, v in found if k.startswith(prefix)))


def _pending(
    state: Delta, txs: list[tuple[set[bytes], Delta, bool]]
) -> tuple[PendingIndex, list[Delta], Delta]:
    """The index of ``txs`` checked in order over ``state``: each records what it read
    there. Also their recorded reads, and the pending writes."""
    index, view, recorded = PendingIndex(), dict(state), []
    for number, (reads, writes, _) in enumerate(txs):
        seen = {key: view.get(key) for key in reads}
        recorded.append(seen)
        index.add(bytes([number]), seen, writes.keys())
        view |= writes
    return index, recorded, {k: v for t in txs for k, v in t[1].items()}


@settings(max_examples=1500, deadline=None)
@given(
    state=st.dictionaries(st.sampled_from(KEYS), st.sampled_from([b"a", b"b"])),
    txs=TXS,
    block=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3),
    from_removed=st.booleans(),
)
def test_a_survivor_said_to_read_alike_does(
    state: Delta,
    txs: list[tuple[set[bytes], Delta, bool]],
    block: Delta,
    from_removed: bool,
) -> None:
    index, recorded, old_writes = _pending(state, txs)
    if from_removed:  # the block wrote what the committed txs wrote, as usual
        block = {k: v for t in txs if t[2] for k, v in t[1].items()} | block
    removed = frozenset(bytes([n]) for n, t in enumerate(txs) if t[2])
    new_state = state | block
    unwritten = index.unchanged_after(removed, block, _State(new_state))
    if unwritten is None:
        outcomes["rebuild in full"] += 1
        return
    outcomes["in place" if removed or block else "nothing to do"] += 1
    view = dict(new_state)
    for number, (_, writes, committed) in enumerate(txs):
        if committed:
            continue
        for key, value in recorded[number].items():
            assert view.get(key) == value, (number, key)
        view |= writes
    kept = {k: v for k, v in old_writes.items() if k not in unwritten}
    for key in KEYS:
        assert (kept[key] if key in kept else new_state.get(key)) == view.get(key), key
    assert set(unwritten) <= set(block) | {k for t in txs if t[2] for k in t[1]}


def test_the_walk_reaches_both_answers() -> None:
    """Run after the property: it answered in place often, and not always."""
    test_a_survivor_said_to_read_alike_does()
    assert outcomes["in place"] > 100 and outcomes["rebuild in full"] > 100, outcomes


def _nonce_chain(index: PendingIndex, sender: bytes, first: int, count: int) -> None:
    for nonce in range(first, first + count):
        tx_id = sender + bytes([nonce])
        index.add(tx_id, {b"nonce" + sender: bytes([nonce - 1])}, [b"nonce" + sender, tx_id])


def test_a_senders_committed_nonces_leave_its_later_txs_in_place() -> None:
    """The load's common case: the block took two senders' first nonces."""
    index = PendingIndex()
    _nonce_chain(index, b"A", 1, 5)
    _nonce_chain(index, b"B", 1, 5)
    removed = frozenset([b"A\x01", b"A\x02", b"B\x01"])
    block = {b"nonceA": b"\x02", b"nonceB": b"\x01", b"A\x01": b"", b"A\x02": b"", b"B\x01": b""}
    unwritten = index.unchanged_after(removed, block, _State({}))
    assert unwritten is not None
    assert sorted(unwritten) == [b"A\x01", b"A\x02", b"B\x01"]  # only their own records


def test_a_block_that_moved_a_nonce_otherwise_rebuilds_in_full() -> None:
    index = PendingIndex()
    _nonce_chain(index, b"A", 1, 3)
    # The block took A's nonce 1 from elsewhere (another tx with that nonce).
    assert index.unchanged_after(frozenset(), {b"nonceA": b"\x01"}, _State({})) is None


def test_a_removed_writer_after_a_surviving_blind_writer_rebuilds_in_full() -> None:
    """Without the prefix condition, the reader after the removed writer would be
    kept, though the rebuilt view gives it the survivor's value."""
    index = PendingIndex()
    index.add(b"w", {}, [b"k"])  # writes k without reading it: survives
    index.add(b"r", {}, [b"k"])  # writes k: committed
    index.add(b"s", {b"k": b"r's"}, [])  # read r's value: survives
    assert index.unchanged_after(frozenset([b"r"]), {b"k": b"r's"}, _State({})) is None


def test_a_survivor_without_recorded_reads_rebuilds_in_full() -> None:
    index = PendingIndex()
    index.add(b"a", {}, [b"x"])
    index.add(b"scan", None, [b"y"])
    assert index.unchanged_after(frozenset([b"a"]), {b"x": b"1"}, _State({})) is None
    index.remove(b"scan")
    assert index.unchanged_after(frozenset([b"a"]), {b"x": b"1"}, _State({})) == [b"x"]


def test_remove_and_rebuild_leave_no_trace() -> None:
    index = PendingIndex()
    index.add(b"a", {b"k": None}, [b"k"])
    index.add(b"b", None, [b"j"])
    index.remove(b"a")
    index.remove(b"b")
    assert len(index) == 0 and not index._readers and not index._writers
    index.rebuild([(b"c", {b"k": None}, [b"k"])])
    assert len(index) == 1 and list(index._writers) == [b"k"]
