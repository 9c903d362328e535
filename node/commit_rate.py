"""``CommitRate``: how many txs the network committed per second lately.

Sans-I/O (no clock: time enters as ``now_ms``). The mempool sizes its
backlog for clients from it (``Mempool.backlog_bound_txs``): admitting more
than the network commits in a second or two only makes every admitted tx
wait longer (measured before this bound, at 1,600 attests/s offered against
~300/s of capacity: 20,000 pending, p50 44 s), while a client told
``503 MEMPOOL_FULL`` with ``Retry-After`` tries again when there is room.

The rate is the txs of the blocks committed in the last ``window_ms`` of
*busy* time, divided by the whole window (not by the time since the first of
them), so it never overshoots after a short burst. Until a whole window of
busy time has passed (a fresh node) it divides by the busy time so far, but
by no less than ``MIN_SPAN_MS``: divided by the whole window it read a fifth
of the rate one second in, and a fresh devnet under full load answered
``MEMPOOL_FULL`` at the backlog's floor (``min_backlog_txs``) for its first
two seconds (docs/performance.md, "Flushes staggered across the validators").
Under a backlog the network commits at its capacity, so the rate converges
on it.

Busy time is the time the mempool held txs (``observe``); a quiet spell, the
mempool empty, does not age the window. Wall time did: five quiet seconds
took the rate to zero, and the next burst was held to the floor (256 txs,
64 a bank) while the rate climbed back over five seconds (docs/performance.md,
"Busy answers at 1,600 attests/s"). A rate remembered across a quiet spell
was measured on the txs of the last busy one; under a new mix it adapts
within a window of busy time.
"""

from __future__ import annotations

from collections import deque

MIN_SPAN_MS = 1_000
"""The least busy time the rate divides by: less than a second of blocks is no
measure of a second (one block committed 50 ms into a burst is not 20 blocks a
second)."""


class CommitRate:
    """Txs committed per second over a sliding window of ``window_ms`` of busy time."""

    def __init__(self, window_ms: int) -> None:
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 1:
            raise ValueError(f"window_ms must be a positive int, got {window_ms!r}")
        self.window_ms = window_ms
        self._blocks: deque[tuple[int, int]] = deque()
        """(busy time of its commit, txs)."""
        self._txs_in_window = 0
        self._busy_ms = 0
        self._busy = True
        """Until told otherwise (``observe``) all time is busy time."""
        self._last_ms: int | None = None

    def observe(self, now_ms: int, *, busy: bool) -> None:
        """Whether the mempool holds txs from ``now_ms`` on (``busy``)."""
        self._advance(now_ms)
        self._busy = busy

    def record(self, txs: int, now_ms: int) -> None:
        """A block of ``txs`` (accepted and rejected: both took a place) committed."""
        self._advance(now_ms)
        if txs > 0:
            self._blocks.append((self._busy_ms, txs))
            self._txs_in_window += txs
        self._expire()

    def per_s(self, now_ms: int) -> float:
        self._advance(now_ms)
        self._expire()
        span_ms = min(self.window_ms, max(self._busy_ms, MIN_SPAN_MS))
        return self._txs_in_window * 1000 / span_ms

    def _advance(self, now_ms: int) -> None:
        last_ms = self._last_ms
        if last_ms is None or now_ms > last_ms:  # a clock stepped back counts no time
            if last_ms is not None and self._busy:
                self._busy_ms += now_ms - last_ms
            self._last_ms = now_ms

    def _expire(self) -> None:
        blocks = self._blocks
        while blocks and blocks[0][0] <= self._busy_ms - self.window_ms:
            self._txs_in_window -= blocks.popleft()[1]
