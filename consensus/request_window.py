"""The committed request ids a replica still deduplicates: a window of heights.

A request id is the tx id. The core only needs ids of recent heights: a
client retry comes soon after its request, and a NEW-VIEW re-issues batches
from within one watermark window above the stable checkpoint. Anything older
that is proposed again is the ledger's to refuse (nonces and spent inputs
make a replayed tx invalid, and ``execute_batch`` returns it as rejected), so
forgetting it costs at most a wasted place in a block, never a second
execution. Keeping every id forever cost ~98 B each, for good, and every
restart and state transfer had to hand the whole set back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class RecentIds(dict[bytes, int]):
    """Request id -> the height it was committed at, in commit order.

    A dict, so the per-request membership test stays a C-level lookup (it is
    on the core's hot path). Heights only grow (blocks execute in order), so
    expiring pops from the front. An id committed again (a repeat the ledger
    skipped) gets the later height but keeps its place, so it can hold back
    the expiry of the ids after it by at most one window.

    The front is kept in ``_order`` (the ids in the dict's own order), not
    found with ``next(iter(self))``: a dict keeps the slots of deleted
    entries until it next grows, and iterating skips them one by one, so each
    expiry scanned every id expired since then: 94 us a block of 14 ids and
    14.7 ms a block of 256 in a window of 256 heights (docs/performance.md).
    Only ``add_all`` and ``expire`` change a ``RecentIds``.
    """

    __slots__ = ("_order",)

    def __init__(self) -> None:
        super().__init__()
        self._order: deque[bytes] = deque()

    def add_all(self, request_ids: Iterable[bytes], height: int) -> None:
        order = self._order
        for request_id in request_ids:
            if request_id not in self:
                order.append(request_id)
            self[request_id] = height

    def expire(self, up_to_height: int) -> None:
        """Forget the ids committed at ``up_to_height`` or below, oldest first."""
        order = self._order
        while order:
            oldest = order[0]
            if self[oldest] > up_to_height:
                break
            order.popleft()
            del self[oldest]
