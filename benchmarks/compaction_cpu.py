"""LevelDB CPU for a chain store's attest writes: the writing thread and the
compaction thread apart, under each table setting and undo-log layout.

    python -m benchmarks.compaction_cpu [--blocks 2500] [--txs 70] [--rounds 2]
        [--compression none,snappy] [--undo-layouts key,height] [--window 1024]
        [--seed 1]

Builds ``--blocks`` write batches shaped like an attest block's (one new state
key and one nonce update per tx, with their undo and changed-key records, the
tx index, the block and its certificate, and the state tree's records from
``SparseMerkleTree.compute_update``, so the tree's layout is the one the store
writes). Then, for each round and each setting in turn, writes them
into a fresh ``LevelDBBackend`` (unsynced: fsync is the disk's time, not
CPU) and waits until compaction has been quiet for a second. It prints the
writing thread's CPU, every other thread's (LevelDB's compaction) and the
total, per setting and round (docs/performance.md, "LevelDB's compression").

``--undo-layouts``: ``store`` is the store's (``ledger.state_history``: ``U``
keyed by state key then height, and one ``V`` record a height listing its
changed keys); ``per-key`` is the store's before the twenty-fifth session (a
``V`` record per changed key); ``height``, for comparison, has ``U`` keyed by
height then state key (written in order) and no ``V``.
``--window N`` also deletes each height's undo records N heights later, as the
store's pruning does (0, the default: never, as this replay did before).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ledger.leveldb_store import COMPRESSIONS, LevelDBBackend
from ledger.state_history import CHANGED_PREFIX, UNDO_PREFIX, encode_changed_keys
from ledger.state_root import SparseMerkleTree
from ledger.store import (
    BLOCK_PREFIX,
    CERTIFICATE_PREFIX,
    NODE_PREFIX,
    STATE_PREFIX,
    TX_PREFIX,
)
from node.thread_cpu import ThreadCpu

Batch = list[tuple[bytes, bytes | None]]
QUIET_S = 1.0


UNDO_LAYOUTS = ("store", "per-key", "height")


def attest_batches(
    blocks: int, txs: int, accounts: int, seed: int, *, undo_layout: str = "store", window: int = 0
) -> list[Batch]:
    """Write batches like ``commit_block``'s for blocks of ``txs`` attests, with the
    undo log in ``undo_layout`` (``UNDO_LAYOUTS``), pruned ``window`` heights later
    (0: never)."""
    if undo_layout not in UNDO_LAYOUTS:
        raise ValueError(f"undo_layout: one of {', '.join(UNDO_LAYOUTS)}, not {undo_layout!r}")
    rng = random.Random(seed)
    changed_at: dict[int, list[bytes]] = {}
    records: dict[bytes, bytes] = {}
    tree = SparseMerkleTree(records.get)
    nonces: dict[bytes, int] = {}
    batches: list[Batch] = []
    for height in range(1, blocks + 1):
        h = height.to_bytes(8, "big")
        batch: Batch = []
        changes: dict[bytes, bytes | None] = {}
        for _ in range(txs):
            changes[b"a" + rng.randbytes(39)] = rng.randbytes(50) + bytes(60)
            account = b"n" + rng.randrange(accounts).to_bytes(32, "big")
            nonces[account] = nonces.get(account, 0) + 1
            changes[account] = nonces[account].to_bytes(8, "big")
            batch.append((TX_PREFIX + rng.randbytes(32), h[2:]))
        update = tree.compute_update(changes)
        tree_records = update.records()
        for key, record in tree_records:
            if record is None:
                records.pop(key, None)
            else:
                records[key] = record
        tree.apply_update(update)
        batch.extend((STATE_PREFIX + key, value) for key, value in changes.items())
        batch.extend(_undo_records(undo_layout, list(changes), h, write=True))
        changed_at[height] = list(changes)
        if window and height > window:
            pruned = (height - window).to_bytes(8, "big")
            batch.extend(
                _undo_records(undo_layout, changed_at.pop(height - window), pruned, write=False)
            )
        batch.append((BLOCK_PREFIX + h, rng.randbytes(txs * 80) + bytes(txs * 95)))
        batch.append((CERTIFICATE_PREFIX + h, rng.randbytes(290)))
        batch.extend((NODE_PREFIX + key, record) for key, record in tree_records)
        batches.append(batch)
    return batches


def _undo_records(
    layout: str, keys: list[bytes], height: bytes, *, write: bool
) -> list[tuple[bytes, bytes | None]]:
    """The undo-log records of ``keys`` changed at ``height`` (8 bytes), or, with
    ``write=False``, their deletes, in ``layout``."""
    if layout == "height":
        return [(UNDO_PREFIX + height + key, b"\x00" if write else None) for key in keys]
    records: list[tuple[bytes, bytes | None]] = [
        (UNDO_PREFIX + key + height, b"\x00" if write else None) for key in keys
    ]
    if layout == "per-key":
        records.extend((CHANGED_PREFIX + height + key, b"" if write else None) for key in keys)
    else:
        records.append((CHANGED_PREFIX + height, encode_changed_keys(keys) if write else None))
    return records


def _others(totals: dict[str, float], writer: str) -> float:
    return sum(seconds for label, seconds in totals.items() if label != writer)


def replay(batches: Sequence[Batch], path: Path, compression: str) -> tuple[float, float]:
    """(writer CPU s, compaction CPU s) to write ``batches`` into a fresh store at ``path``."""
    threads = ThreadCpu()
    writer = threading.current_thread().name
    before = threads.read()
    backend = LevelDBBackend(path, compression=compression)
    try:
        for batch in batches:
            backend.write(batch, sync=False)
        last = _others(threads.read(), writer)
        while True:
            time.sleep(QUIET_S)
            now = _others(threads.read(), writer)
            if now - last < 0.02:
                break
            last = now
        after = threads.read()
    finally:
        backend.close()
    wrote = after.get(writer, 0.0) - before.get(writer, 0.0)
    return wrote, _others(after, writer) - _others(before, writer)


def run(
    blocks: int,
    txs: int,
    rounds: int,
    compressions: Sequence[str],
    seed: int,
    *,
    undo_layouts: Sequence[str] = ("store",),
    window: int = 0,
) -> None:
    started = time.process_time()
    by_layout = {
        layout: attest_batches(blocks, txs, 256, seed, undo_layout=layout, window=window)
        for layout in undo_layouts
    }
    for layout, batches in by_layout.items():
        written = sum(len(k) + len(v or b"") for batch in batches for k, v in batch)
        tree = sum(1 for batch in batches for k, _ in batch if k[:1] == NODE_PREFIX)
        print(
            f"{blocks} blocks of {txs} attests, undo log by {layout}"
            f"{f', pruned after {window} heights' if window else ''}: {written / 2**20:.0f} MiB"
            f" in {sum(len(b) for b in batches)} records, {tree} of them tree nodes",
            flush=True,
        )
    print(f"(built in {time.process_time() - started:.1f} s CPU)", flush=True)
    settings = [(c, layout) for c in compressions for layout in undo_layouts]
    with tempfile.TemporaryDirectory(prefix="veil-compaction-") as tmp:
        for round_ in range(1, rounds + 1):
            # Alternate the order each round: the host's speed drifts.
            for compression, layout in settings if round_ % 2 else settings[::-1]:
                path = Path(tmp) / f"{compression}-{layout}-{round_}"
                wrote, compacted = replay(by_layout[layout], path, compression)
                print(
                    f"round {round_} {compression:7s} {layout:6s} writer {wrote:6.2f} s  "
                    f"compaction {compacted:6.2f} s  total {wrote + compacted:6.2f} s",
                    flush=True,
                )
                shutil.rmtree(path)


def _undo_layouts(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in UNDO_LAYOUTS for name in names):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(UNDO_LAYOUTS)}")
    return names


def _compressions(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in COMPRESSIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(COMPRESSIONS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compaction_cpu")
    parser.add_argument("--blocks", type=int, default=2500)
    parser.add_argument("--txs", type=int, default=70, help="attests per block")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compression", type=_compressions, default=list(COMPRESSIONS))
    parser.add_argument("--undo-layouts", type=_undo_layouts, default=["store"])
    parser.add_argument("--window", type=int, default=0, help="prune after N heights (0: never)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.blocks, args.txs, args.rounds) < 1 or args.window < 0:
        parser.error("--blocks, --txs and --rounds must be positive, --window not negative")
    run(
        args.blocks,
        args.txs,
        args.rounds,
        args.compression,
        args.seed,
        undo_layouts=args.undo_layouts,
        window=args.window,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
