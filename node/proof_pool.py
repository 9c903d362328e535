"""Range proofs verified off the event loop: a process pool whose workers warm up once.

A batch verification is seconds of CPU for a big batch; the event loop must
not wait on it (issue 9: nothing blocks the loop). Each worker process
builds the generator tables of every proof shape a tx may carry in its
initializer (``warm_generators``), so no request pays that cost.

``ProofVerifier`` is what the runtime awaits: ``batch_verify``'s contract
(the indices of the bad statements) as a coroutine. ``inline_verifier`` is
the same check on the loop itself, for tests that want no processes.

Workers die with the node. They are forked from it (the "fork" context,
pinned so the node stays their parent on any Python), so they hold copies of
its listening sockets: a worker that outlived a SIGKILLed node kept its ports
and the restarted node could not listen. Each worker's initializer asks
Linux to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``, via
ctypes), checks the parent is still the node (it may have died before the
call), and starts a thread that exits the worker once its parent pid
changes (within ``PARENT_POLL_S``; the fallback where prctl is missing).

A worker that dies (the OOM killer, a crash, an operator's signal) breaks a
``ProcessPoolExecutor`` for good: every later batch raised
``BrokenProcessPool``, so the node answered every confidential tx "busy" until
it was restarted, while it looked healthy. The pool now starts a new executor
when it finds its executor broken, retries that batch once on it, and counts
the restart (``restarts``, ``veil_proof_pool_restarts_total``).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ledger.tx import MAX_OUTPUTS, RANGE_BITS
from privacy.generators import bulletproof_generators
from privacy.rangeproof import RangeStatement, batch_verify

ProofVerifier = Callable[[Sequence[RangeStatement]], Awaitable[list[int]]]

log = logging.getLogger("veil.node.proof_pool")

PR_SET_PDEATHSIG = 1
"""``<linux/prctl.h>``: the signal a process gets when its parent dies."""
PARENT_POLL_S = 1.0


def warm_generators() -> None:
    """Build the generator tables for every aggregation size a tx may use."""
    parties = 1
    while parties <= MAX_OUTPUTS:
        bulletproof_generators(RANGE_BITS, parties)
        parties *= 2


def die_with_parent(parent_pid: int) -> None:
    """In a worker: be killed when ``parent_pid`` dies (see the module docstring)."""
    ask_kernel_to_kill_with_parent()
    if os.getppid() != parent_pid:  # the node died before the request took effect
        os._exit(1)
    start_parent_watch(parent_pid)


def ask_kernel_to_kill_with_parent() -> bool:
    """Linux: SIGKILL this process when its parent dies; False where that is missing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def start_parent_watch(parent_pid: int) -> None:
    """A daemon thread that exits this process once its parent is no longer ``parent_pid``."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="veil-parent-watch", daemon=True).start()


def _start_worker(parent_pid: int) -> None:
    die_with_parent(parent_pid)
    warm_generators()


def _verify(statements: list[RangeStatement]) -> list[int]:
    return batch_verify(statements)


class ProofPool:
    """``workers`` processes verifying batches of range statements."""

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"proof workers must be a positive int, got {workers!r}")
        self._workers = workers
        self._executor = self._new_executor()
        self.restarts = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )

    async def verify(self, statements: Sequence[RangeStatement]) -> list[int]:
        """``batch_verify`` in a worker; on a broken pool, once more on a new one
        (a batch that itself kills its worker then raises ``BrokenProcessPool``)."""
        loop = asyncio.get_running_loop()
        batch = list(statements)
        executor = self._executor
        try:
            return await loop.run_in_executor(executor, _verify, batch)
        except BrokenProcessPool:
            self._replace(executor)
        return await loop.run_in_executor(self._executor, _verify, batch)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A new executor for ``broken``, unless a batch that failed with it already
        made one (several fail together when their worker dies)."""
        if self._executor is not broken:
            return
        self.restarts += 1
        log.error("a proof worker died: starting a new proof pool (restart %d)", self.restarts)
        broken.shutdown(wait=False, cancel_futures=True)  # its worker is gone already
        self._executor = self._new_executor()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


async def inline_verifier(statements: Sequence[RangeStatement]) -> list[int]:
    return batch_verify(statements)
