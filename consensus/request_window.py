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
from dataclasses import dataclass, field


@dataclass(slots=True)
class RecentIds:
    """Ids with the height they were committed at, oldest first.

    Heights only grow (blocks execute in order), so expiring is popping from
    the front of an insertion-ordered dict.
    """

    heights: dict[bytes, int] = field(default_factory=dict)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self.heights

    def __len__(self) -> int:
        return len(self.heights)

    def add(self, request_id: bytes, height: int) -> None:
        """Remember ``request_id`` as committed at ``height`` (the first height wins)."""
        self.heights.setdefault(request_id, height)

    def add_all(self, request_ids: Iterable[bytes], height: int) -> None:
        for request_id in request_ids:
            self.add(request_id, height)

    def expire(self, up_to_height: int) -> None:
        """Forget every id committed at ``up_to_height`` or below."""
        heights = self.heights
        while heights:
            oldest = next(iter(heights))
            if heights[oldest] > up_to_height:
                break
            del heights[oldest]
