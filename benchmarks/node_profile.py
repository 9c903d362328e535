"""Run one validator under cProfile, every thread of it, to find where its CPU goes.

    python -m benchmarks.node_profile --out node0.prof --config DEVNET/nodes/0/node.toml

Stop it with SIGTERM (the node drains and exits); the merged profile of the
main thread (the event loop) and every other thread (the serial worker:
execution and synced writes) is written to ``--out`` and the top functions by
own time are printed.

The timer is cProfile's own wall clock by default (``--timer wall``), so a
thread's waiting shows as the own time of the call it waits in (the loop's
``epoll.poll``, the worker's ``SimpleQueue.get`` for its next job, fsync in a
synced LevelDB write); every other function's own time is its CPU time. The
per-thread CPU clock (``--timer cpu``, ``time.thread_time``) counts CPU only,
but each reading is a system call (1.6 us measured here against 0.27 us for
``time.perf_counter``), two per Python call: it made the profiled node
several times slower than its peers, so it fell behind, executed 16 of the
network's 83 blocks in a run and stopped looking like a validator at all
(the serial worker seemed missing from the profile because it had little to
execute). Check the node's height against its peers' before trusting a profile.
The proof-pool processes are not profiled (their CPU is measured by
``devnet.load.cpu`` from /proc, for ``python -m benchmarks.load``).

To profile a devnet node: ``python -m devnet kill --dir D N``, then start this
with node N's config (its ports are free again) and run the load.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from node.main import main as node_main

TIMERS = ("wall", "cpu")


def new_profile(timer: str) -> cProfile.Profile:
    """A profiler with cProfile's built-in clock (``wall``) or the thread's CPU clock."""
    if timer == "cpu":
        return cProfile.Profile(time.thread_time)
    if timer == "wall":
        return cProfile.Profile()
    raise ValueError(f"timer must be one of {TIMERS}, got {timer!r}")


def profile_node(config: Path, out: Path, top: int, timer: str = "wall") -> int:
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profile = new_profile(timer)
        with lock:
            profiles.append(profile)
        profile.runcall(original_run, thread)

    threading.Thread.run = profiled_run  # type: ignore[method-assign,assignment]
    main_profile = new_profile(timer)
    try:
        status = main_profile.runcall(node_main, config)
    finally:
        threading.Thread.run = original_run  # type: ignore[method-assign]
    stats = pstats.Stats(main_profile)
    with lock:
        for profile in profiles:
            profile.create_stats()
            stats.add(profile)
    stats.dump_stats(str(out))
    stats.sort_stats("tottime").print_stats(top)
    print(f"blocks this node executed while profiled: {executed_blocks(stats)}")
    return int(status)


def executed_blocks(stats: pstats.Stats) -> int:
    """Calls of ``ledger.execute.execute_batch`` in ``stats``: one per block the node
    executed, to set against its peers' height (a profiled node that fell behind
    profiles a node that no longer validates)."""
    entries: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    entries = stats.stats  # type: ignore[attr-defined]
    return sum(
        calls
        for (path, _, name), (_, calls, _, _, _) in entries.items()
        if name == "execute_batch" and Path(path).parts[-2:] == ("ledger", "execute.py")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node_profile")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--timer", choices=TIMERS, default="wall")
    args = parser.parse_args(argv)
    return profile_node(args.config, args.out, args.top, args.timer)


if __name__ == "__main__":
    sys.exit(main())
