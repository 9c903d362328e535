"""benchmarks.node_sample: the event loop's busy stacks are counted, other threads are
left alone, and everything is restored after the run."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from benchmarks import node_sample

SPIN_S = 0.3


def _spin_on_the_loop(seconds: float) -> int:
    """Burns CPU on the calling thread for ``seconds`` of its CPU time."""
    total = 0
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        total += sum(range(1000))
    return total


def _fake_node(config: Path) -> int:
    """A worker thread records whether SIGPROF reaches it, and the loop spins."""
    del config
    seen: list[bool] = []

    def worker() -> None:
        seen.append(signal.SIGPROF in signal.pthread_sigmask(signal.SIG_BLOCK, set()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    _spin_on_the_loop(SPIN_S)
    return 0 if seen == [True] else 3


def test_the_loops_busy_function_leads_and_other_threads_block_the_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(node_sample, "node_main", _fake_node)
    original_run = threading.Thread.run
    out = tmp_path / "samples.txt"
    assert node_sample.sample_node(tmp_path / "node.toml", out, 0.002, top=10) == 0
    report = out.read_text()
    lines = report.splitlines()
    busy = int(lines[0].split()[2])
    assert busy >= 20, report  # 0.3 s of CPU at one sample per 2 ms: about 150
    exclusive = lines[lines.index("-- exclusive") + 1]
    count = int(exclusive.split()[0])
    assert "_spin_on_the_loop" in exclusive and count >= busy // 2, report
    by_caller = lines[lines.index("-- exclusive, by caller") + 1]
    assert "_spin_on_the_loop" in by_caller and "<-" in by_caller, report
    assert "(_fake_node)" in by_caller.split("<-")[1], report
    assert "busy of" in capsys.readouterr().out
    # Restored: no timer, the default handler, threads unpatched.
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGPROF) == signal.SIG_DFL
    assert threading.Thread.run is original_run


def test_a_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        node_sample.LoopSampler(0)
