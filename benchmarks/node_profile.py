"""Run one validator under cProfile, every thread of it, to find where its CPU goes.

    python -m benchmarks.node_profile --out node0.prof --config DEVNET/nodes/0/node.toml

Stop it with SIGTERM (the node drains and exits); the merged profile of the
main thread (the event loop) and every other thread (the serial worker:
execution and synced writes) is written to ``--out`` and the top functions by
own time are printed. Each profiler's timer is ``time.thread_time``, so time
spent waiting (select, fsync) is not counted: the profile is of CPU.
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


def profile_node(config: Path, out: Path, top: int) -> int:
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.runcall(original_run, thread)

    threading.Thread.run = profiled_run  # type: ignore[method-assign,assignment]
    main_profile = cProfile.Profile(time.thread_time)
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
    return int(status)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node_profile")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    return profile_node(args.config, args.out, args.top)


if __name__ == "__main__":
    sys.exit(main())
