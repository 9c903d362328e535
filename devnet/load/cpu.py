"""CPU seconds of a node process and its descendants (the proof-pool workers), from /proc.

``utime + stime`` of every thread of the process, read from ``/proc/PID/stat``;
a node's children are found by scanning ``/proc/*/stat`` for their parent id.
Linux only; on anything else (or for a pid that is gone) the reading is None.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

PROC = Path("/proc")
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class CpuReading:
    """CPU seconds so far: the node's own process and the sum over its descendants."""

    main_s: float
    children_s: float

    @property
    def total_s(self) -> float:
        return self.main_s + self.children_s

    def minus(self, earlier: CpuReading) -> CpuReading:
        # A child that died between readings takes its seconds with it: never negative.
        return CpuReading(
            max(0.0, self.main_s - earlier.main_s), max(0.0, self.children_s - earlier.children_s)
        )


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return text.rsplit(")", 1)[1].split()


def _cpu_s(fields: list[str]) -> float:
    # Fields after the name, 0-based: state=0, ppid=1, ..., utime=11, stime=12.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def _parents() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def read_cpu(pids: list[int | None]) -> list[CpuReading | None]:
    """One reading per pid (None for a missing pid or a process that is gone)."""
    if not PROC.is_dir():
        return [None for _ in pids]
    tree = _parents()
    readings: list[CpuReading | None] = []
    for pid in pids:
        own = _stat_fields(pid) if pid is not None else None
        if pid is None or own is None:
            readings.append(None)
            continue
        children_s = 0.0
        stack = list(tree.get(pid, []))
        while stack:
            child = stack.pop()
            fields = _stat_fields(child)
            if fields is not None:
                children_s += _cpu_s(fields)
            stack.extend(tree.get(child, []))
        readings.append(CpuReading(_cpu_s(own), children_s))
    return readings


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


THREAD_CPU_METRIC = "veil_thread_cpu_seconds_total"


def parse_thread_cpu(metrics_text: str) -> dict[str, float]:
    """``{thread: seconds}`` from a node's ``/metrics`` text (``node/thread_cpu.py``);
    empty if the node does not export the family or the text does not parse."""
    try:
        return {
            sample.labels["thread"]: sample.value
            for family in text_string_to_metric_families(metrics_text)
            for sample in family.samples
            if sample.name == THREAD_CPU_METRIC and "thread" in sample.labels
        }
    except ValueError:
        return {}


STORE_WRITTEN_METRIC = "veil_store_compaction_written_bytes_total"


def parse_store_written_bytes(metrics_text: str, store: str = "chain") -> float | None:
    """Bytes LevelDB has written for ``store`` (memtable flushes and compactions, every
    level: ``ledger.leveldb_stats``) from a node's ``/metrics`` text: 0 before its first
    flush; None if the node does not export the family or the text does not parse."""
    try:
        families = [
            family
            for family in text_string_to_metric_families(metrics_text)
            if family.name + "_total" == STORE_WRITTEN_METRIC
        ]
    except ValueError:
        return None
    if not families:
        return None
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == STORE_WRITTEN_METRIC and sample.labels.get("store") == store
    )


def mean_delta(before: Sequence[float | None], after: Sequence[float | None]) -> float | None:
    """The mean of ``after - before`` over the nodes read both times (None if none was)."""
    deltas = [
        new - old
        for old, new in zip(before, after, strict=True)
        if old is not None and new is not None
    ]
    return sum(deltas) / len(deltas) if deltas else None


def mean_thread_cpu_delta(
    before: Sequence[Mapping[str, float] | None], after: Sequence[Mapping[str, float] | None]
) -> dict[str, float]:
    """Seconds per thread label between two scrapes, mean over the nodes read both times."""
    deltas = [
        {label: max(0.0, seconds - old.get(label, 0.0)) for label, seconds in new.items()}
        for old, new in zip(before, after, strict=True)
        if old is not None and new is not None
    ]
    if not deltas:
        return {}
    labels = sorted({label for delta in deltas for label in delta})
    return {label: sum(d.get(label, 0.0) for d in deltas) / len(deltas) for label in labels}
