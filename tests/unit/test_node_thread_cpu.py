"""CPU seconds by thread for /metrics: each thread under its label, LevelDB's own
thread as ``native``, and totals that do not fall when a thread exits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import plyvel

from node.metrics import NodeMetrics
from node.thread_cpu import NATIVE, ThreadCpu, thread_label


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_pool_numbers_leave_the_label() -> None:
    assert thread_label("asyncio_3") == "asyncio"
    assert thread_label("ThreadPoolExecutor-0_1") == "ThreadPoolExecutor"
    assert thread_label("veil-worker") == "veil-worker"
    assert thread_label("MainThread") == "MainThread"


def test_a_thread_is_counted_under_its_name_and_keeps_its_seconds_after_it_exits() -> None:
    reader = ThreadCpu()
    started = threading.Event()
    stop = threading.Event()

    def work() -> None:
        _spin(0.3)
        started.set()
        stop.wait()

    thread = threading.Thread(target=work, name="veil-spin")
    thread.start()
    started.wait()
    alive = reader.read()
    stop.set()
    thread.join()
    after = reader.read()
    assert alive["veil-spin"] >= 0.2
    assert after["veil-spin"] >= alive["veil-spin"]
    assert after["MainThread"] >= alive["MainThread"] > 0


def test_leveldb_compaction_is_counted_as_native(tmp_path: Path) -> None:
    reader = ThreadCpu()
    before = reader.read().get(NATIVE, 0.0)
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True, compression=None)
    try:
        for round_ in range(6):  # several tables, then a manual compaction of all of them
            with db.write_batch() as batch:
                for i in range(25_000):
                    batch.put(b"%d-%08d" % (round_, i * 7919 % 25_000), b"v" * 150)
        db.compact_range()
        after = reader.read().get(NATIVE, 0.0)
    finally:
        db.close()
    assert after > before


def test_metrics_render_the_threads() -> None:
    text = NodeMetrics().render().decode()
    assert 'veil_thread_cpu_seconds_total{thread="MainThread"}' in text
