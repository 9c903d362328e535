"""CPU per admitted tx of the node's two bounded caches once full, before and after
their ``OrderedDict``.

    python -m benchmarks.fifo_cache_cpu [--adds 50000] [--rounds 3]

``StatelessCache.add`` runs at every admission (its default capacity, 16,384
txs, is full after that many admissions), ``ProofCache.mark_verified`` for
every range statement the proof pool accepted (100,000). Each is filled to
three times its capacity, then ``--adds`` fresh entries are timed (process
CPU), alternating with ``PlainDict*``: the same class with the eviction before
(a plain dict whose oldest key was found by iterating, which skips every slot
deleted since the dict last grew).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import cast

from ledger.proof_cache import ProofCache
from ledger.recorded_apply import AppliedTx
from ledger.stateless_cache import StatelessCache
from ledger.tx import DecodedTx

DECODED = cast(DecodedTx, object())


class PlainDictStatelessCache(StatelessCache):
    """``StatelessCache`` before: a plain dict, the oldest key by iteration."""

    def __init__(self) -> None:
        super().__init__()
        self._passed_plain: dict[bytes, DecodedTx] = {}
        self._applied_plain: dict[bytes, AppliedTx] = {}

    def add(self, tx_bytes: bytes, decoded: DecodedTx) -> None:
        key = self.key(tx_bytes)
        with self._lock:
            self._passed_plain[key] = decoded
            while len(self._passed_plain) > self._capacity:
                evicted = next(iter(self._passed_plain))
                del self._passed_plain[evicted]
                self._applied_plain.pop(evicted, None)


class PlainDictProofCache(ProofCache):
    """``ProofCache`` before."""

    def __init__(self) -> None:
        super().__init__()
        self._verified_plain: dict[bytes, None] = {}

    def _remember(self, keys: Sequence[bytes]) -> None:
        with self._lock:
            verified = self._verified_plain
            for key in keys:
                verified[key] = None
            while len(verified) > self._capacity:
                del verified[next(iter(verified))]


def stateless_us(cache: StatelessCache, adds: int) -> float:
    for _ in range(3 * cache._capacity):
        cache.add(os.urandom(40), DECODED)
    fresh = [os.urandom(40) for _ in range(adds)]
    started = time.process_time()
    for tx_bytes in fresh:
        cache.add(tx_bytes, DECODED)
    return (time.process_time() - started) * 1e6 / adds


def proof_us(cache: ProofCache, adds: int) -> float:
    for _ in range(3 * cache._capacity // 64):
        cache._remember([os.urandom(32) for _ in range(64)])
    fresh = [[os.urandom(32)] for _ in range(adds)]
    started = time.process_time()
    for keys in fresh:
        cache._remember(keys)
    return (time.process_time() - started) * 1e6 / adds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fifo_cache_cpu")
    parser.add_argument("--adds", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.adds < 1 or args.rounds < 1:
        parser.error("--adds and --rounds must be positive")
    adds: int = args.adds
    runs: list[tuple[str, Callable[[], float]]] = [
        ("StatelessCache.add, plain dict", lambda: stateless_us(PlainDictStatelessCache(), adds)),
        ("StatelessCache.add, OrderedDict", lambda: stateless_us(StatelessCache(), adds)),
        ("ProofCache entry, plain dict", lambda: proof_us(PlainDictProofCache(), adds)),
        ("ProofCache entry, OrderedDict", lambda: proof_us(ProofCache(), adds)),
    ]
    samples: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for label, run in runs:
            samples.setdefault(label, []).append(run())
    print(
        f"{args.adds} adds a round once full, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}"
    )
    for label, values in samples.items():
        print(
            f"{label}: {statistics.median(values):.2f} us (rounds {[round(v, 2) for v in values]})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
