"""CPU of the state tree's update per attest block, the C walk against the Python one.

    python -m benchmarks.state_tree_walk [--keys 120000] [--blocks 200] [--txs 100] [--seed 1]

Grows two identical trees (one walked in C, one in Python, each over its own
dict of records) to ``--keys`` random keys, then feeds both the same
``--blocks`` blocks shaped like an attest block: ``--txs`` new ``attest:``
keys and the four banks' nonces. Each block is timed on both trees in turn
(process CPU), for ``compute_update``, ``records`` and ``apply_update``, and
the roots are checked to agree. It prints the medians per block and per attest
(docs/performance.md, "The state tree's walk in C"), the tree records a block
writes, and what a block costs on a cold node cache: a fresh tree over the
same records, as after a restart, in CPU and record reads (docs/performance.md,
"Interior records every fourth level").
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence

from ledger.state_root import NATIVE_WALK, SmtUpdate, SparseMerkleTree, python_records

COLD_TRIALS = 5


class Tree:
    """A tree over a dict of records, walked in C or in Python."""

    def __init__(self, *, native: bool) -> None:
        self.records: dict[bytes, bytes] = {}
        self.native = native
        self.tree = SparseMerkleTree(self.records.get, native=native)

    def records_of(self, update: SmtUpdate) -> list[tuple[bytes, bytes | None]]:
        return update.records() if self.native else python_records(update)

    def write(self, records: list[tuple[bytes, bytes | None]]) -> None:
        for key, record in records:
            if record is None:
                self.records.pop(key, None)
            else:
                self.records[key] = record

    def commit(self, update: SmtUpdate) -> None:
        self.write(self.records_of(update))
        self.tree.apply_update(update)


def attest_block(rng: random.Random, txs: int) -> dict[bytes, bytes | None]:
    block: dict[bytes, bytes | None] = {
        b"attest:" + rng.randbytes(32): rng.randbytes(80) for _ in range(txs)
    }
    block.update({b"nonce:" + bytes([bank]) * 32: rng.randbytes(8) for bank in range(4)})
    return block


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=120_000)
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--txs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not NATIVE_WALK:
        print("state_tree_walk: the C walk is not built (make install)", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    trees = {"C": Tree(native=True), "Python": Tree(native=False)}
    for grown in range(0, args.keys, 1_000):
        batch = {rng.randbytes(40): rng.randbytes(60) for _ in range(min(1_000, args.keys - grown))}
        for tree in trees.values():
            tree.commit(tree.tree.compute_update(batch))
    print(f"two trees of {args.keys} keys, {len(trees['C'].records)} records each", flush=True)
    update_s: dict[str, list[float]] = {name: [] for name in trees}
    records_s: dict[str, list[float]] = {name: [] for name in trees}
    apply_s: dict[str, list[float]] = {name: [] for name in trees}
    written: list[int] = []
    for _ in range(args.blocks):
        block = attest_block(rng, args.txs)
        roots = set()
        for name, tree in trees.items():
            start = time.process_time()
            update = tree.tree.compute_update(block)
            middle = time.process_time()
            records = tree.records_of(update)
            end = time.process_time()
            if name == "C":
                written.append(sum(1 for _, record in records if record is not None))
            tree.write(records)
            applied = time.process_time()
            tree.tree.apply_update(update)
            apply_s[name].append(time.process_time() - applied)
            update_s[name].append(middle - start)
            records_s[name].append(end - middle)
            roots.add(update.root)
        if len(roots) != 1:
            print("state_tree_walk: the two walks disagree on a root", file=sys.stderr)
            return 1
    for name in trees:
        update_ms = statistics.median(update_s[name]) * 1e3
        records_ms = statistics.median(records_s[name]) * 1e3
        apply_ms = statistics.median(apply_s[name]) * 1e3
        per_tx = 1e3 / args.txs
        print(
            f"{name:6} compute_update {update_ms:6.2f} ms a block ({update_ms * per_tx:5.1f}"
            f" µs an attest), records {records_ms:5.2f} ms ({records_ms * per_tx:4.1f} µs),"
            f" apply_update {apply_ms:5.2f} ms ({apply_ms * per_tx:4.1f} µs)"
        )
    print(f"tree records written a block: median {statistics.median(written):.0f}")
    cold_ms, cold_reads = cold_blocks(trees["C"].records, rng, args.txs)
    print(f"cold cache, first block: median {cold_ms:.2f} ms CPU, {cold_reads:.0f} record reads")
    return 0


def cold_blocks(records: dict[bytes, bytes], rng: random.Random, txs: int) -> tuple[float, float]:
    """Median CPU ms and record reads of one block's ``compute_update`` on a fresh tree."""
    times: list[float] = []
    reads: list[int] = []
    for _ in range(COLD_TRIALS):
        count = 0

        def read(key: bytes) -> bytes | None:
            nonlocal count
            count += 1
            return records.get(key)

        tree = SparseMerkleTree(read)
        block = attest_block(rng, txs)
        start = time.process_time()
        tree.compute_update(block)
        times.append(time.process_time() - start)
        reads.append(count)
    return statistics.median(times) * 1e3, statistics.median(reads)


if __name__ == "__main__":
    sys.exit(main())
