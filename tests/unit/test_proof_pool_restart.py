"""A proof worker that dies no longer breaks the node's proof pool for good: the pool
starts a new executor, retries the batch once, and counts the restart."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool

import pytest

from node.metrics import NodeMetrics
from node.proof_pool import ProofPool, ProofWorkerError


class _KillsItsWorker:
    """Unpickled in the worker, it ends that process at once: a batch that crashes it."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (os._exit, (3,))


def _kill_workers() -> None:
    """SIGKILL the pool's worker processes (the OOM killer, say) and let it notice."""
    for child in multiprocessing.active_children():
        if child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
    time.sleep(0.3)


def _with_warm_pool(scenario: Callable[[ProofPool], Awaitable[None]]) -> None:
    """Run ``scenario`` on a one-worker pool that has answered once, then close it."""

    async def run() -> None:
        pool = ProofPool(1)
        try:
            assert await pool.verify([]) == []
            await scenario(pool)
        finally:
            pool.close()

    asyncio.run(run())


def test_a_killed_worker_is_replaced_and_the_batch_is_retried_on_the_new_pool() -> None:
    async def scenario(pool: ProofPool) -> None:
        _kill_workers()
        # Before: BrokenProcessPool here and for every batch after.
        assert await pool.verify([]) == []
        assert await pool.verify([]) == []
        assert pool.restarts == 1

    _with_warm_pool(scenario)


def test_a_batch_that_kills_its_worker_fails_once_and_the_next_batch_gets_a_new_pool() -> None:
    async def scenario(pool: ProofPool) -> None:
        with pytest.raises(BrokenProcessPool):
            await pool.verify([_KillsItsWorker()])  # type: ignore[list-item]
        assert pool.restarts == 1  # retried once on a new pool, which it killed too
        assert await pool.verify([]) == []
        assert pool.restarts == 2

    _with_warm_pool(scenario)


class _SlowsItsWorker:
    """Unpickled in the worker, it sleeps there: a batch still in flight."""

    def __reduce__(self) -> tuple[object, tuple[float]]:
        return (time.sleep, (1.0,))


def test_a_batch_in_flight_on_a_worker_found_dead_fails_over_instead_of_hanging() -> None:
    """The next batch can find the worker dead before the loop has read its socket's
    end; replacing it then must settle what was waiting on it too."""

    async def scenario(pool: ProofPool) -> None:
        slow = asyncio.ensure_future(pool.verify([_SlowsItsWorker()]))  # type: ignore[list-item]
        await asyncio.sleep(0.2)  # sent, and sleeping in the worker
        _kill_workers()  # blocks the loop: the socket's end is not read yet
        assert await pool.verify([]) == []
        assert pool.restarts == 1
        # Retried on the new worker, which sleeps, then refuses a None statement.
        with pytest.raises(ProofWorkerError):
            await asyncio.wait_for(slow, 10)

    _with_warm_pool(scenario)


def test_batches_failing_together_start_one_new_pool() -> None:
    async def scenario(pool: ProofPool) -> None:
        _kill_workers()
        answers = await asyncio.gather(*(pool.verify([]) for _ in range(4)))
        assert answers == [[]] * 4
        assert pool.restarts == 1

    _with_warm_pool(scenario)


def test_the_restarts_are_in_the_metrics() -> None:
    metrics = NodeMetrics()
    restarts = [0]
    metrics.export_proof_pool_restarts(lambda: restarts[0])
    restarts[0] = 2
    text = metrics.render().decode()
    assert "# TYPE veil_proof_pool_restarts_total counter" in text
    assert "veil_proof_pool_restarts_total 2.0" in text
