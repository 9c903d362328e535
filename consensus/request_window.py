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

from collections.abc import Iterable


class RecentIds(dict[bytes, int]):
    """Request id -> the height it was committed at, in commit order.

    A dict, so the per-request membership test stays a C-level lookup (it is
    on the core's hot path). Heights only grow (blocks execute in order), so
    expiring pops from the front. An id committed again (a repeat the ledger
    skipped) gets the later height but keeps its place, so it can hold back
    the expiry of the ids after it by at most one window.
    """

    __slots__ = ()

    def add_all(self, request_ids: Iterable[bytes], height: int) -> None:
        self.update(dict.fromkeys(request_ids, height))

    def expire(self, up_to_height: int) -> None:
        """Forget the ids committed at ``up_to_height`` or below, oldest first."""
        while self:
            oldest = next(iter(self))
            if self[oldest] > up_to_height:
                break
            del self[oldest]
