"""CPU per point read of the chain store's LevelDB, with and without Bloom filters.

    python -m benchmarks.store_reads [--keys 200000] [--reads 20000] [--rounds 5]
    python -m benchmarks.store_reads --copy-of DEVNET/nodes/0/data/chain

Two databases with the same content, one written with ``bloom_filter_bits=0``
(the store before ``DEFAULT_BLOOM_FILTER_BITS``) and one with the default, both
through ``LevelDBBackend`` (checksummed reads, as the node reads). By default
the content is synthetic: ``--keys`` tx-index records (``TX_PREFIX`` and a random
id) written in blocks of 256 through a 1 MiB write buffer, so they spread over
several tables and levels as a node's do. ``--copy-of`` copies a stopped or
running node's ``data/chain`` twice instead and compacts each copy with its
setting (every table then has a filter, or none). Each round reads ids that
are absent (a new tx's duplicate check at admission) and ids that are present,
alternating the two databases, and the median process CPU per read is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ledger.leveldb_store import DEFAULT_BLOOM_FILTER_BITS, LevelDBBackend
from ledger.store import TX_PREFIX

BLOCK_TXS = 256
SYNTHETIC_WRITE_BUFFER_BYTES = 1 << 20


def build_synthetic(path: Path, keys: list[bytes], bloom_filter_bits: int) -> None:
    backend = LevelDBBackend(
        path,
        write_buffer_bytes=SYNTHETIC_WRITE_BUFFER_BYTES,
        bloom_filter_bits=bloom_filter_bits,
    )
    try:
        for start in range(0, len(keys), BLOCK_TXS):
            height = start // BLOCK_TXS + 1
            # A location record's size: (height, index) in msgpack, padded like a value.
            batch = [
                (key, height.to_bytes(4, "big") + index.to_bytes(2, "big") + b"\x00" * 10)
                for index, key in enumerate(keys[start : start + BLOCK_TXS])
            ]
            backend.write(batch, sync=False)
    finally:
        backend.close()


def copy_and_compact(source: Path, path: Path, bloom_filter_bits: int) -> None:
    shutil.copytree(source, path, ignore=shutil.ignore_patterns("LOCK"))
    backend = LevelDBBackend(path, bloom_filter_bits=bloom_filter_bits)
    try:
        backend.compact()
    finally:
        backend.close()


def cpu_per_read_us(backend: LevelDBBackend, keys: Sequence[bytes]) -> float:
    started = time.process_time()
    for key in keys:
        backend.get(key)
    return (time.process_time() - started) * 1e6 / len(keys)


def present_keys(backend: LevelDBBackend, count: int, rng: random.Random) -> list[bytes]:
    keys = [key for key, _ in backend.iterate(TX_PREFIX)]
    if not keys:
        raise SystemExit("the database holds no tx-index record")
    return [rng.choice(keys) for _ in range(count)]


def run(keys: int, reads: int, rounds: int, copy_of: Path | None, seed: int) -> None:
    rng = random.Random(seed)
    settings = {
        "no filter": 0,
        f"{DEFAULT_BLOOM_FILTER_BITS} bits a key": DEFAULT_BLOOM_FILTER_BITS,
    }
    with tempfile.TemporaryDirectory() as directory:
        paths = {label: Path(directory) / str(bits) for label, bits in settings.items()}
        if copy_of is None:
            tx_keys = [TX_PREFIX + rng.randbytes(32) for _ in range(keys)]
            for label, bits in settings.items():
                build_synthetic(paths[label], tx_keys, bits)
        else:
            for label, bits in settings.items():
                copy_and_compact(copy_of, paths[label], bits)
        backends = {
            label: LevelDBBackend(paths[label], bloom_filter_bits=bits)
            for label, bits in settings.items()
        }
        try:
            tables = {label: len(list(paths[label].glob("*.ldb"))) for label in settings}
            present = present_keys(backends["no filter"], reads, rng)
            absent = [TX_PREFIX + rng.randbytes(32) for _ in range(reads)]
            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(rounds):
                for label, backend in backends.items():
                    for kind, probe in (("absent", absent), ("present", present)):
                        samples.setdefault((label, kind), []).append(
                            cpu_per_read_us(backend, probe)
                        )
        finally:
            for backend in backends.values():
                backend.close()
    print(
        f"tables: {tables}; {reads} reads a round, {rounds} rounds, load {os.getloadavg()[0]:.1f}"
    )
    for kind in ("absent", "present"):
        medians = {label: statistics.median(samples[(label, kind)]) for label in settings}
        old, new = medians.values()
        cells = ", ".join(f"{label} {value:.2f} us" for label, value in medians.items())
        print(f"{kind} key: {cells} (x{old / new:.2f})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_reads")
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copy-of", type=Path, default=None, help="a node's data/chain")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.keys < 1 or args.reads < 1 or args.rounds < 1:
        parser.error("--keys, --reads and --rounds must be positive")
    if args.copy_of is not None and not (args.copy_of / "CURRENT").is_file():
        parser.error(f"{args.copy_of} is not a LevelDB directory (no CURRENT file)")
    run(args.keys, args.reads, args.rounds, args.copy_of, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
