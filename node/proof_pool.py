"""Range proofs verified off the event loop: a process pool whose workers warm up once.

A batch verification is seconds of CPU for a big batch; the event loop must
not wait on it (issue 9: nothing blocks the loop). Each worker process
builds the generator tables of every proof shape a tx may carry in its
initializer (``warm_generators``), so no request pays that cost.

``ProofVerifier`` is what the runtime awaits: ``batch_verify``'s contract
(the indices of the bad statements) as a coroutine. ``inline_verifier`` is
the same check on the loop itself, for tests that want no processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from ledger.tx import MAX_OUTPUTS, RANGE_BITS
from privacy.generators import bulletproof_generators
from privacy.rangeproof import RangeStatement, batch_verify

ProofVerifier = Callable[[Sequence[RangeStatement]], Awaitable[list[int]]]


def warm_generators() -> None:
    """Build the generator tables for every aggregation size a tx may use."""
    parties = 1
    while parties <= MAX_OUTPUTS:
        bulletproof_generators(RANGE_BITS, parties)
        parties *= 2


def _verify(statements: list[RangeStatement]) -> list[int]:
    return batch_verify(statements)


class ProofPool:
    """``workers`` processes verifying batches of range statements."""

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"proof workers must be a positive int, got {workers!r}")
        self._executor = ProcessPoolExecutor(max_workers=workers, initializer=warm_generators)

    async def verify(self, statements: Sequence[RangeStatement]) -> list[int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _verify, list(statements))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


async def inline_verifier(statements: Sequence[RangeStatement]) -> list[int]:
    return batch_verify(statements)
