"""The proof pool's workers answer over sockets of their own: each caller gets its own
batch's answer, however many batches are in flight and however large."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import socket
from collections.abc import Awaitable, Callable

import pytest

from node.proof_pool import ProofPool, ProofWorkerError, _frame, _serve
from privacy.rangeproof import RangeStatement, prove_range


def _statements() -> list[RangeStatement]:
    """Two good 8-bit statements and their tampered twins."""
    good = []
    for values in ([3, 200], [7, 9]):
        proof, commitments = prove_range(values, [11, 12], 8)
        good.append(RangeStatement(commitments, proof, 8))
    bad = [dataclasses.replace(s, commitments=s.commitments[::-1]) for s in good]
    return good + bad


def _with_pool(workers: int, scenario: Callable[[ProofPool], Awaitable[None]]) -> None:
    async def run() -> None:
        pool = ProofPool(workers)
        try:
            await scenario(pool)
        finally:
            pool.close()
        for worker in pool._workers:
            assert not worker.process.is_alive()  # close() reaped it

    asyncio.run(run())


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_batches_each_get_their_own_answer(workers: int) -> None:
    good_a, good_b, bad_a, bad_b = _statements()
    batches = [
        [good_a, bad_a, good_b],
        [bad_b],
        [good_b, good_a],
        [bad_a, bad_b, good_a, bad_a],
        [],
    ] * 3
    expected = [[1], [0], [], [0, 1, 3], []] * 3

    async def scenario(pool: ProofPool) -> None:
        answers = await asyncio.gather(*(pool.verify(batch) for batch in batches))
        assert answers == expected
        assert pool.restarts == 0

    _with_pool(workers, scenario)


def test_a_batch_larger_than_a_socket_buffer_goes_through() -> None:
    """About 6 MB pickled: written as the worker reads, read back in many chunks."""
    good, _, bad, _ = _statements()
    junk = RangeStatement(good.commitments, bytes(4000), 8)  # fails to parse: bad
    batch = [good, bad, *[junk] * 1500]

    async def scenario(pool: ProofPool) -> None:
        first, big, last = await asyncio.gather(
            pool.verify([bad]), pool.verify(batch), pool.verify([good])
        )
        assert (first, big, last) == ([0], list(range(1, len(batch))), [])

    _with_pool(1, scenario)


def test_a_batch_the_verifier_raises_on_fails_alone() -> None:
    good = _statements()[0]

    async def scenario(pool: ProofPool) -> None:
        with pytest.raises(ProofWorkerError, match="AttributeError"):
            await pool.verify([object()])  # type: ignore[list-item]
        assert await pool.verify([good]) == []
        assert pool.restarts == 0  # the worker lived on

    _with_pool(1, scenario)


def test_a_worker_whose_node_closed_its_end_exits_quietly(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A node that halts (a full disk) closes its end while a batch is verified.
    The worker must exit 0 without a traceback, which the chaos checks read as
    a crash in the node's log."""
    ours, theirs = socket.socketpair()
    worker = multiprocessing.get_context("fork").Process(
        target=_serve, args=(theirs, [ours], os.getpid()), daemon=True
    )
    worker.start()
    theirs.close()
    ours.sendall(_frame(_statements()))
    ours.close()  # the batch stays readable; the answer has nowhere to go
    worker.join(60)
    assert worker.exitcode == 0
    assert "Traceback" not in capfd.readouterr().err
