"""Proof-pool workers end when their parent dies: by ``prctl(PR_SET_PDEATHSIG)``
on Linux, and by the parent-pid watcher where that is missing.

Each test forks a stand-in for the node (P), which forks a worker (W) that
arms one mechanism; P reports W's pid, the test SIGKILLs P only and watches W.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from node import proof_pool


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie holds no sockets; its new parent reaps it


def orphan_outlives_parent(arm: Callable[[int], None], within_s: float) -> bool:
    """Fork P, P forks W which runs ``arm(P's pid)`` then sleeps; kill P; is W
    still alive after ``within_s``?"""
    read_end, write_end = os.pipe()
    parent = os.fork()
    if parent == 0:  # P, the stand-in node
        worker = os.fork()
        if worker == 0:  # W
            # A failing arm leaves W unarmed: it lives on and the check fails.
            with contextlib.suppress(BaseException):
                arm(os.getppid())
            time.sleep(60)
            os._exit(0)
        os.write(write_end, str(worker).encode())
        time.sleep(60)
        os._exit(0)
    os.close(write_end)
    worker = int(os.read(read_end, 32))
    os.close(read_end)
    try:
        time.sleep(0.3)  # W has armed itself
        assert alive(worker)
        os.kill(parent, signal.SIGKILL)
        os.waitpid(parent, 0)
        deadline = time.monotonic() + within_s
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.02)
        return alive(worker)
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_prctl_kills_the_worker_with_its_parent() -> None:
    def arm(_parent_pid: int) -> None:
        assert proof_pool.ask_kernel_to_kill_with_parent()

    assert not orphan_outlives_parent(arm, within_s=2.0)


def test_the_parent_watch_ends_the_worker_where_prctl_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(proof_pool, "PARENT_POLL_S", 0.05)
    assert not orphan_outlives_parent(proof_pool.start_parent_watch, within_s=2.0)


def test_die_with_parent_arms_both() -> None:
    assert not orphan_outlives_parent(proof_pool.die_with_parent, within_s=2.0)


def test_a_worker_that_arms_nothing_outlives_its_parent() -> None:
    """The check above can fail: an unarmed worker survives its parent."""
    assert orphan_outlives_parent(lambda _pid: None, within_s=1.0)
