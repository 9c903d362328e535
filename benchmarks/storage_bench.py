"""Storage benchmarks: state-root update cost, synced commit latency, bytes on disk per block.

Run: ``.venv/bin/python -m benchmarks.storage_bench`` (``--quick`` for a smoke run).

A block of 128 two-in/two-out transfers touches about 600 state keys: 256
spent outputs deleted, 256 new outputs inserted, and ~88 account or metadata
updates. Each measurement below uses such a change set against a state of the
given size, and reports the median of several runs (the machine is noisy).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ledger.batch import BlockMetadata
from ledger.leveldb_store import LevelDBStore
from ledger.state import StateDelta, account_key, output_key
from ledger.store import BlockWrite, KeyValueStore, MemoryStore

TXS_PER_BLOCK = 128
DELETES = 256
INSERTS = 256
UPDATES = 88
TX_BYTES = 2300
"""Approximate size of one encoded two-output confidential transfer (proof and memos)."""
OUTPUT_VALUE_BYTES = 260
"""Approximate stored output: owner, asset, commitment, two sealed memos."""


def _block_write(  # noqa: PLR0917 (the record's field order)
    height: int,
    block_hash: bytes,
    block_bytes: bytes,
    certificate_bytes: bytes,
    delta: StateDelta,
    tx_ids: Sequence[bytes],
) -> BlockWrite:
    return BlockWrite(
        height=height,
        block_hash=block_hash,
        block_bytes=block_bytes,
        certificate_bytes=certificate_bytes,
        metadata=BlockMetadata(0, 0),
        rejected=(),
        delta=delta,
        tx_ids=tuple(tx_ids),
    )


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def live_bytes(store: LevelDBStore) -> int:
    """Bytes of live keys and values (what remains once LevelDB has compacted away garbage)."""
    return sum(len(key) + len(value) for key, value in store.backend.iterate(b""))


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Chain:
    """Deterministic synthetic blocks over a store holding ``size`` outputs."""

    def __init__(self, store: KeyValueStore, size: int, seed: int = 7) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.live: list[bytes] = []
        self.accounts = [hashlib.sha256(b"acct%d" % i).digest() for i in range(1000)]
        genesis = StateDelta((account_key(a), self.rng.randbytes(80)) for a in self.accounts)
        for _ in range(size):
            oid = self.rng.randbytes(32)
            self.live.append(oid)
            genesis.put(output_key(oid), self.rng.randbytes(OUTPUT_VALUE_BYTES))
        store.commit_block(
            _block_write(0, hashlib.sha256(b"genesis").digest(), b"genesis", b"", genesis, [])
        )

    def next_delta(self) -> tuple[StateDelta, list[bytes]]:
        rng = self.rng
        delta = StateDelta()
        for _ in range(DELETES):
            index = rng.randrange(len(self.live))
            self.live[index], self.live[-1] = self.live[-1], self.live[index]
            delta.delete(output_key(self.live.pop()))
        for _ in range(INSERTS):
            oid = rng.randbytes(32)
            self.live.append(oid)
            delta.put(output_key(oid), rng.randbytes(OUTPUT_VALUE_BYTES))
        for account in rng.sample(self.accounts, UPDATES):
            delta.put(account_key(account), rng.randbytes(80))
        tx_ids = [rng.randbytes(32) for _ in range(TXS_PER_BLOCK)]
        return delta, tx_ids

    def commit_next(self) -> tuple[float, int]:
        """Commit one block; returns (seconds, block bytes)."""
        delta, tx_ids = self.next_delta()
        block = self.rng.randbytes(TXS_PER_BLOCK * TX_BYTES)
        height = self.store.height() + 1
        block_hash = hashlib.sha256(block).digest()
        started = time.perf_counter()
        self.store.commit_block(
            _block_write(height, block_hash, block, self.rng.randbytes(3 * 96), delta, tx_ids)
        )
        return time.perf_counter() - started, len(block)


def bench_root_update(
    make_store: Callable[[], KeyValueStore], size: int, runs: int
) -> tuple[float, float]:
    """(median, min) ms to compute the root after a 600-change block (no write)."""
    chain = Chain(make_store(), size)
    if isinstance(chain.store, LevelDBStore):
        chain.store.backend.compact()  # measure the tree, not the genesis write's compaction
    samples = []
    for _ in range(runs):
        delta, tx_ids = chain.next_delta()
        started = time.perf_counter()
        chain.store.preview_state_root(delta)
        samples.append(time.perf_counter() - started)
        height = chain.store.height() + 1
        chain.store.commit_block(_block_write(height, os.urandom(32), b"", b"", delta, tx_ids))
    chain.store.close()
    return median_ms(samples), min(samples) * 1000


def bench_commit(size: int, blocks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("VEIL_BENCH_DIR")) as tmp:
        path = Path(tmp) / "db"
        store = LevelDBStore(path)
        chain = Chain(store, size)
        chain.commit_next()  # warm up
        store.backend.compact()
        before = dir_bytes(path)
        live_before = live_bytes(store)
        samples = []
        block_bytes = 0
        for _ in range(blocks):
            seconds, size_bytes = chain.commit_next()
            samples.append(seconds)
            block_bytes += size_bytes
        store.backend.compact()
        after = dir_bytes(path)
        live_after = live_bytes(store)
        store.close()
        reopen_started = time.perf_counter()
        LevelDBStore(path).close()
        reopen = time.perf_counter() - reopen_started
    per_block = (after - before) / blocks
    overhead = per_block - block_bytes / blocks
    live_per_block = (live_after - live_before) / blocks
    return {
        "live_bytes_per_block": live_per_block,
        "live_overhead_bytes_per_tx": (live_per_block - block_bytes / blocks) / TXS_PER_BLOCK,
        "overhead_bytes_per_tx": overhead / TXS_PER_BLOCK,
        "commit_ms": median_ms(samples),
        "commit_min_ms": min(samples) * 1000,
        "commit_p90_ms": sorted(samples)[int(len(samples) * 0.9)] * 1000,
        "disk_bytes_per_block": per_block,
        "block_bytes": block_bytes / blocks,
        "disk_bytes_per_tx": per_block / TXS_PER_BLOCK,
        "reopen_ms": reopen * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [10_000, 100_000]
    runs = 5 if args.quick else 15
    commit_blocks = 10 if args.quick else 40
    print(f"600-change block: {DELETES} deletes, {INSERTS} inserts, {UPDATES} updates")
    print("state root update (preview_state_root, median of", runs, "runs):")
    for size in sizes:
        memory, memory_min = bench_root_update(MemoryStore, size, runs)
        print(f"  MemoryStore  state {size:>7} keys: {memory:7.1f} ms (min {memory_min:.1f})")
        with tempfile.TemporaryDirectory(dir=os.environ.get("VEIL_BENCH_DIR")) as tmp:
            cold, cold_min = bench_root_update(
                lambda: LevelDBStore(Path(tmp) / "db", cache_nodes=0), size, runs
            )
        print(
            f"  LevelDBStore state {size:>7} keys: {cold:7.1f} ms (min {cold_min:.1f}, "
            "node cache off)"
        )
        with tempfile.TemporaryDirectory(dir=os.environ.get("VEIL_BENCH_DIR")) as tmp:
            warm, warm_min = bench_root_update(lambda: LevelDBStore(Path(tmp) / "db"), size, runs)
        print(
            f"  LevelDBStore state {size:>7} keys: {warm:7.1f} ms (min {warm_min:.1f}, "
            "node cache on)"
        )
    print(
        f"LevelDBStore.commit_block, sync=True, {TXS_PER_BLOCK} txs x {TX_BYTES} B, median of "
        f"{commit_blocks} blocks:"
    )
    for size in sizes:
        result = bench_commit(size, commit_blocks)
        print(
            f"  state {size:>7} keys: commit {result['commit_ms']:.1f} ms "
            f"(min {result['commit_min_ms']:.1f}, p90 {result['commit_p90_ms']:.1f}), "
            f"disk {result['disk_bytes_per_block'] / 1024:.1f} KiB/block for "
            f"{result['block_bytes'] / 1024:.1f} KiB of block bytes "
            f"= {result['disk_bytes_per_tx']:.0f} B/tx "
            f"({result['overhead_bytes_per_tx']:+.0f} B/tx beyond the block bytes), "
            f"reopen {result['reopen_ms']:.0f} ms"
        )
        print(
            f"  state {size:>7} keys: live data {result['live_bytes_per_block'] / 1024:.1f} "
            f"KiB/block, {result['live_overhead_bytes_per_tx']:+.0f} B/tx beyond the block bytes "
            "(the directory also holds overwritten tree nodes until LevelDB compacts them)"
        )


if __name__ == "__main__":
    main()
