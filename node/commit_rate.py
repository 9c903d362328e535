"""``CommitRate``: how many txs the network committed per second lately.

Sans-I/O (no clock: time enters as ``now_ms``). The mempool sizes its
backlog for clients from it (``Mempool.backlog_bound_txs``): admitting more
than the network commits in a second or two only makes every admitted tx
wait longer (measured before this bound, at 1,600 attests/s offered against
~300/s of capacity: 20,000 pending, p50 44 s), while a client told
``503 MEMPOOL_FULL`` with ``Retry-After`` tries again when there is room.

The rate is the txs of the blocks committed in the last ``window_ms``,
divided by the whole window (not by the time since the first of them), so
it never overshoots after a short burst; at start-up or after a quiet spell
it reads low, and the mempool's floor (``min_backlog_txs``) keeps room for
a few blocks' worth meanwhile. Under a backlog the network commits at its
capacity, so the rate converges on it.
"""

from __future__ import annotations

from collections import deque


class CommitRate:
    """Txs committed per second over a sliding window of ``window_ms``."""

    def __init__(self, window_ms: int) -> None:
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 1:
            raise ValueError(f"window_ms must be a positive int, got {window_ms!r}")
        self.window_ms = window_ms
        self._blocks: deque[tuple[int, int]] = deque()
        self._txs_in_window = 0

    def record(self, txs: int, now_ms: int) -> None:
        """A block of ``txs`` (accepted and rejected: both took a place) committed."""
        if txs > 0:
            self._blocks.append((now_ms, txs))
            self._txs_in_window += txs
        self._expire(now_ms)

    def per_s(self, now_ms: int) -> float:
        self._expire(now_ms)
        return self._txs_in_window * 1000 / self.window_ms

    def _expire(self, now_ms: int) -> None:
        blocks = self._blocks
        while blocks and blocks[0][0] <= now_ms - self.window_ms:
            self._txs_in_window -= blocks.popleft()[1]
