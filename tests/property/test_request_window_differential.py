"""``RecentIds`` keeps its front in a deque: the same ids, heights and order as the
plain dict it replaced, which found its front by iterating (quadratic once many
ids had expired, docs/performance.md)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.request_window_cpu import PlainDictIds  # the algorithm before
from consensus.request_window import RecentIds

IDS = st.lists(st.sampled_from([bytes([n]) * 4 for n in range(12)]), max_size=6)
# Each step commits a block at the next height (ids may repeat, within a block or
# from an earlier one), then expires a window of 0 to 5 heights back.
STEPS = st.lists(st.tuples(IDS, st.integers(0, 5)), max_size=40)


@settings(max_examples=300)
@given(steps=STEPS)
def test_the_same_ids_heights_and_order_as_the_plain_dict(
    steps: list[tuple[list[bytes], int]],
) -> None:
    kept, plain = RecentIds(), PlainDictIds()
    for height, (ids, window) in enumerate(steps, start=1):
        kept.add_all(ids, height)
        plain.add_all(ids, height)
        kept.expire(height - window)
        plain.expire(height - window)
        assert list(kept.items()) == list(plain.items())
        for request_id in ids:
            assert (request_id in kept) == (request_id in plain)
