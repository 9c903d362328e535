"""CPU seconds by thread, read from ``/proc/self/task`` at each ``/metrics`` scrape.

Why: a validator's CPU is split over the event loop (``MainThread``), the
serial worker (``veil-worker``), the block reader (``veil-reader``) and
threads Python did not start, chiefly LevelDB's compaction (``native``). The
last one grows with the chain store (docs/performance.md, "LevelDB's
compression"); the process total hides which one is growing. Linux only:
without ``/proc`` the reading is empty.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Final

TASKS: Final = Path("/proc/self/task")
NATIVE: Final = "native"
"""The label of every thread Python did not start (LevelDB's, for one)."""
_TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_POOL_NUMBER = re.compile(r"[-_]\d+(?:_\d+)?$")


def thread_label(name: str) -> str:
    """A Python thread's name without its pool's running number, so the labels
    stay a bounded set (``asyncio_3`` -> ``asyncio``)."""
    return _POOL_NUMBER.sub("", name) or name


def task_ids() -> list[int]:
    """The thread ids of this process (none without ``/proc``)."""
    try:
        return [int(entry.name) for entry in TASKS.iterdir() if entry.name.isdigit()]
    except OSError:
        return []


def task_cpu_s(tid: int) -> float | None:
    """User + system CPU seconds of thread ``tid`` of this process, or None if gone."""
    try:
        text = (TASKS / str(tid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


class ThreadCpu:
    """CPU seconds per thread label that never decrease between readings, as a
    Prometheus counter must not: a thread that exits (or whose id is reused)
    keeps, under its label, what it was last seen using."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[str, float]] = {}
        self._retired: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        labels = {
            thread.native_id: thread_label(thread.name)
            for thread in threading.enumerate()
            if thread.native_id is not None
        }
        tids = task_ids()
        if not tids:
            return {}
        seen: dict[int, tuple[str, float]] = {}
        for tid in tids:
            cpu_s = task_cpu_s(tid)
            if cpu_s is not None:
                seen[tid] = (labels.get(tid, NATIVE), cpu_s)
        for tid, (label, cpu_s) in self._last.items():
            now = seen.get(tid)
            if now is None or now[0] != label or now[1] < cpu_s:
                self._retired[label] = self._retired.get(label, 0.0) + cpu_s
        self._last = seen
        totals = dict(self._retired)
        for label, cpu_s in seen.values():
            totals[label] = totals.get(label, 0.0) + cpu_s
        return totals
