"""LevelDB's compaction below the node's own threads in the CPU scheduler's eyes.

Why: compaction is background work. It may wait a moment; a consensus step, an
admission or a block's execution should not. LevelDB starts its compaction
thread itself, at the priority of the process, and on a busy host it then
takes its share exactly when the chain store has just grown. On the devnet
the first compaction falls in the second load run, and before each validator
had its own write buffer (``ledger.leveldb_store.staggered_write_buffer_bytes``)
it fell on every node at once, when that run's first seconds had spells of
0.26-0.37 s without a block. RocksDB offers the same remedy
(``Env::LowerThreadPoolCPUPriority``). A lower priority is a smaller share
under contention, never none: Linux still gives a nice-10 thread about a
tenth of what a nice-0 one gets, and all of an idle core. If compaction
falls far behind, LevelDB slows and then stops writes itself, so a backlog
cannot grow without bound (docs/performance.md, "Compaction at a lower
priority").

The threads lowered are every thread of the process that Python did not
start (``node.thread_cpu.NATIVE``): in a node that is LevelDB's. Linux sets
nice values per thread; elsewhere this does nothing.
"""

from __future__ import annotations

import os
import threading

from node.thread_cpu import task_ids

MAX_NICE = 19


def lower_native_threads(nice: int, lowered: set[int]) -> list[int]:
    """Set ``nice`` on each thread Python did not start and not in ``lowered``;
    add them to ``lowered`` and return them (none without ``/proc``). A thread
    that ends meanwhile is skipped; a refusal (a sandbox) is left as it is."""
    if not 0 < nice <= MAX_NICE:
        raise ValueError(f"nice must be 1 to {MAX_NICE}, got {nice}")
    started = {thread.native_id for thread in threading.enumerate()}
    done: list[int] = []
    for tid in task_ids():
        if tid in lowered or tid in started:
            continue
        lowered.add(tid)  # tried once: a refusal would be refused again
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            continue
        done.append(tid)
    return done
