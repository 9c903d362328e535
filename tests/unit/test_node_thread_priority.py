"""LevelDB's compaction thread is lowered to the configured nice value; the node's own
Python threads keep theirs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import plyvel
import pytest

from node.thread_cpu import TASKS
from node.thread_priority import MAX_NICE, lower_native_threads


def _nice(tid: int) -> int:
    fields = (TASKS / str(tid) / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5), counted from after the name


def _native_tids() -> set[int]:
    started = {thread.native_id for thread in threading.enumerate()}
    return {int(e.name) for e in TASKS.iterdir() if e.name.isdigit()} - started


@pytest.mark.skipif(not TASKS.exists(), reason="needs /proc")
def test_leveldbs_thread_is_lowered_once_and_pythons_are_not(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    try:
        for i in range(2_000):
            db.put(i.to_bytes(4, "big"), bytes(100))
        db.compact_range()  # runs on LevelDB's background thread, started for it
        native = _native_tids()
        assert native, "LevelDB started no thread of its own"
        main_nice = _nice(threading.get_native_id())
        lowered: set[int] = set()
        done = lower_native_threads(7, lowered)
        assert set(done) >= native and lowered >= native
        assert all(_nice(tid) == 7 for tid in native)
        assert _nice(threading.get_native_id()) == main_nice
        assert lower_native_threads(7, lowered) == []  # each thread once
    finally:
        db.close()


@pytest.mark.parametrize("nice", [0, -1, MAX_NICE + 1])
def test_a_nice_value_out_of_range_is_refused(nice: int) -> None:
    with pytest.raises(ValueError, match="nice must be"):
        lower_native_threads(nice, set())


def test_an_unprivileged_refusal_leaves_the_thread_as_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(which: int, who: int, nice: int) -> None:
        raise PermissionError("not allowed here")

    monkeypatch.setattr(os, "setpriority", refuse)
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True)
    try:
        db.compact_range()
        assert lower_native_threads(5, set()) == []
    finally:
        db.close()
