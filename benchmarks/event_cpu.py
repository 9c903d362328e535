"""CPU per committed tx of one ``/v1/events`` subscriber's ``tx_status`` message.

    python -m benchmarks.event_cpu --copy-of DEVNET/nodes/0/data/chain [--blocks 200] [--rounds 5]

Copies a node's chain store (the node may be running: its lock file is left
out), opens it, and builds the ``committed`` status change of every tx of the
newest ``--blocks`` non-empty blocks, as the runtime publishes them after each
block. Each round turns them into the JSON text a subscriber is sent
(``node.api.events.event_message`` and ``json.dumps``) twice, alternating: with
the certificate read and decoded for every tx (no ``LastCertificate``, the path
before it) and with one ``LastCertificate`` for the stream, as
``GET /v1/events`` now keeps. It prints the median process CPU per tx of each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from ledger.block import block_hash, decode_block
from ledger.leveldb_store import LevelDBStore
from ledger.store import Store
from ledger.tx import tx_id_of
from node.api.events import LastCertificate, event_message
from node.services import Committed, NodeServices, TxStatusChanged


class StoreOnly:
    """The part of ``NodeServices`` a ``tx_status`` message reads."""

    def __init__(self, store: Store) -> None:
        self.store = store


def committed_events(store: LevelDBStore, blocks: int) -> list[TxStatusChanged]:
    events: list[TxStatusChanged] = []
    chain_id = store.block_hash_at(0)  # the store keeps the chain id as height 0's hash
    if chain_id is None:
        raise SystemExit("the store has no genesis")
    height = store.height()
    taken = 0
    while height > 0 and taken < blocks:
        raw = store.block_at(height)
        if raw is None:
            raise SystemExit(f"the store has no block at height {height}")
        block = decode_block(raw)
        if block.txs:
            hash_ = block_hash(block.header, chain_id)
            events[:0] = [
                TxStatusChanged(
                    Committed(tx_id_of(tx.kind, tx.body, chain_id), height, index, hash_)
                )
                for index, tx in enumerate(block.txs)
            ]
            taken += 1
        height -= 1
    if not events:
        raise SystemExit("the store holds no block with a tx: run some load first")
    return events


def cpu_per_tx_us(
    events: Sequence[TxStatusChanged], services: NodeServices, keep_certificate: bool
) -> float:
    certificates = LastCertificate(services) if keep_certificate else None
    started = time.process_time()
    for event in events:
        json.dumps(event_message(event, services, certificates))
    return (time.process_time() - started) * 1e6 / len(events)


def run(copy_of: Path, blocks: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "chain"
        shutil.copytree(copy_of, path, ignore=shutil.ignore_patterns("LOCK"))
        store = LevelDBStore(path)
        try:
            events = committed_events(store, blocks)
            services = cast(NodeServices, StoreOnly(store))
            per_tx: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(rounds):
                for keep in (False, True):
                    per_tx[keep].append(cpu_per_tx_us(events, services, keep))
        finally:
            store.close()
    every_tx, kept = statistics.median(per_tx[False]), statistics.median(per_tx[True])
    print(
        f"{len(events)} committed txs of {blocks} blocks, {rounds} rounds, "
        f"load {os.getloadavg()[0]:.1f}: certificate read and decoded per tx "
        f"{every_tx:.1f} us, once per block {kept:.1f} us per tx (x{every_tx / kept:.2f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.event_cpu")
    parser.add_argument("--copy-of", type=Path, required=True, help="a node's data/chain")
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.blocks < 1 or args.rounds < 1:
        parser.error("--blocks and --rounds must be positive")
    if not (args.copy_of / "CURRENT").is_file():
        parser.error(f"{args.copy_of} is not a LevelDB directory (no CURRENT file)")
    run(args.copy_of, args.blocks, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
