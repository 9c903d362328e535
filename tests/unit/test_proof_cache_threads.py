"""``ProofCache`` shared by the event loop (mempool) and the worker thread (execution).

The node marks proofs verified on its loop while the worker thread runs
``batch_verify`` for a block: both add keys and evict the oldest. Without the
cache's lock, two evictions race (``KeyError``: both delete the same oldest
key; ``RuntimeError``: the dict changed size while its oldest key was read).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence

import pytest

from ledger.proof_cache import ProofCache
from privacy.rangeproof import RangeStatement


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Let the two threads interleave every few bytecodes, as a loaded node may."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def statement(tag: str, i: int) -> RangeStatement:
    return RangeStatement((f"{tag}{i}".encode(),), b"proof", 64)


def all_good(statements: Sequence[RangeStatement]) -> list[int]:
    return []


def test_the_loop_and_the_worker_use_one_cache_at_once(frequent_thread_switches: None) -> None:
    cache = ProofCache(capacity=64, batch_verifier=all_good)
    errors: list[BaseException] = []
    rounds = 8_000

    def worker() -> None:
        try:
            for i in range(rounds):
                assert cache.batch_verify([statement("block", i), statement("block", -i)]) == []
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        for i in range(rounds):
            cache.mark_verified([statement("mempool", i)])
            _ = statement("mempool", i) in cache
            cache.unseen([statement("mempool", i), statement("other", i)])
    finally:
        thread.join()
    assert errors == []
    assert len(cache) == 64
    assert statement("block", rounds - 1) in cache or statement("mempool", rounds - 1) in cache
