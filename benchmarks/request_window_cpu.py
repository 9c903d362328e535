"""CPU per block of the core's committed-request-id window, before and after its deque.

    python -m benchmarks.request_window_cpu [--window 256] [--block-txs 14 64 256] [--blocks 300]

Each replica calls ``remember_committed`` once per executed block: the block's
request ids go into ``consensus.request_window.RecentIds`` and the ids older than
``--window`` heights (the node's ``REQUEST_ID_WINDOW_HEIGHTS``) leave it. The
window is filled to its steady state, then ``--blocks`` blocks of fresh ids
are timed (process CPU), alternating between ``RecentIds`` and ``PlainDictIds``
(the algorithm before: the dict's own order, the front found by iterating,
which skips every deleted slot since the dict last grew), three rounds each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Protocol

from consensus.request_window import RecentIds


class IdWindow(Protocol):
    def add_all(self, request_ids: list[bytes], height: int) -> None: ...

    def expire(self, up_to_height: int) -> None: ...


class PlainDictIds(dict[bytes, int]):
    """``RecentIds`` before its deque."""

    def add_all(self, request_ids: list[bytes], height: int) -> None:
        self.update(dict.fromkeys(request_ids, height))

    def expire(self, up_to_height: int) -> None:
        while self:
            oldest = next(iter(self))
            if self[oldest] > up_to_height:
                break
            del self[oldest]


def us_per_block(ids: IdWindow, window: int, block_txs: int, blocks: int) -> float:
    height = 0
    for height in range(1, 2 * window + 1):  # steady state: a full window, expiring
        ids.add_all([os.urandom(32) for _ in range(block_txs)], height)
        ids.expire(height - window)
    fresh = [[os.urandom(32) for _ in range(block_txs)] for _ in range(blocks)]
    started = time.process_time()
    for block in fresh:
        height += 1
        ids.add_all(block, height)
        ids.expire(height - window)
    return (time.process_time() - started) * 1e6 / blocks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request_window_cpu")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--block-txs", type=int, nargs="+", default=[14, 64, 256])
    parser.add_argument("--blocks", type=int, default=300)
    args = parser.parse_args(argv)
    if args.window < 1 or args.blocks < 1 or min(args.block_txs) < 1:
        parser.error("--window, --blocks and --block-txs must be positive")
    print(
        f"window {args.window} heights, {args.blocks} blocks a round, load {os.getloadavg()[0]:.1f}"
    )
    for block_txs in args.block_txs:
        before: list[float] = []
        after: list[float] = []
        for _ in range(3):
            before.append(us_per_block(PlainDictIds(), args.window, block_txs, args.blocks))
            after.append(us_per_block(RecentIds(), args.window, block_txs, args.blocks))
        old, new = statistics.median(before), statistics.median(after)
        print(
            f"{block_txs} ids a block: plain dict {old:.1f} us a block "
            f"({old / block_txs:.2f} a tx), RecentIds {new:.1f} us "
            f"({new / block_txs:.2f} a tx), x{old / new:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
