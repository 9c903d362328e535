"""CPU per transfer of executing and applying a block, range proofs excluded, for
comparing two revisions in the same run (issue 9, node CPU per transfer).

    python -m benchmarks.execute_cpu make FIXTURE        # prove once (about 90 s)
    PYTHONPATH=OLD python -m benchmarks.execute_cpu time FIXTURE --label old &
    PYTHONPATH=NEW python -m benchmarks.execute_cpu time FIXTURE --label new; wait

``make`` pickles ``benchmarks.ledger_bench.Fixture(128)``'s genesis and txs, so
both revisions run the very same 128 two-output transfers. ``time`` commits the
issues, then runs ``execute_batch`` (a primary's or replica's side) and
``apply_block`` (the decoded block, as catch-up does) ``--runs`` times each on
that state, with a range verifier that accepts everything: what is left is the
node's own Python per transfer. Running both revisions at once puts them under
the same machine load; process CPU time is printed, median and minimum.
The fixture is trusted input (a pickle this command wrote), never a peer's.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from ledger.apply import apply_block, commit_applied
from ledger.batch import BlockMetadata
from ledger.block import decode_block
from ledger.chain import commit_genesis
from ledger.execute import execute_batch
from ledger.genesis import Genesis
from ledger.store import MemoryStore
from privacy.rangeproof import RangeStatement


def make(path: Path, transfers: int) -> None:
    from benchmarks.ledger_bench import Fixture  # noqa: PLC0415 (only ``make`` proves)

    fixture = Fixture(transfers)
    fixture_data = {
        "genesis": fixture.genesis,
        "issues": [t.encode() for t in fixture.issues],
        "transfers": [t.encode() for t in fixture.transfers],
    }
    path.write_bytes(pickle.dumps(fixture_data))


def _accept_all(_statements: Sequence[RangeStatement]) -> list[int]:
    return []


def time_blocks(path: Path, runs: int) -> dict[str, list[float]]:
    """CPU seconds per transfer of each run, for ``execute`` and ``apply``."""
    data = pickle.loads(path.read_bytes())  # our own fixture, see above
    genesis: Genesis = data["genesis"]
    transfers: list[bytes] = data["transfers"]
    store = MemoryStore()
    commit_genesis(store, genesis)
    issued = BlockMetadata(genesis.genesis_time_ms + 1, 0)
    executed = execute_batch(store, genesis, 1, data["issues"], issued)
    applied = apply_block(store, executed.block, genesis)
    commit_applied(store, executed.block, applied, certificate=b"", metadata=issued)
    metadata = BlockMetadata(genesis.genesis_time_ms + 2, 0)
    first = execute_batch(store, genesis, 2, transfers, metadata, range_verifier=_accept_all)
    if first.rejected:
        raise RuntimeError(f"fixture transfer rejected: {first.rejected[0].reason}")
    raw = first.block.encode()
    seconds: dict[str, list[float]] = {"execute": [], "apply": []}
    for _ in range(runs):
        start = time.process_time()
        execute_batch(store, genesis, 2, transfers, metadata, range_verifier=_accept_all)
        seconds["execute"].append((time.process_time() - start) / len(transfers))
        start = time.process_time()
        apply_block(store, decode_block(raw), genesis, range_verifier=_accept_all)
        seconds["apply"].append((time.process_time() - start) / len(transfers))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make_parser = sub.add_parser("make")
    make_parser.add_argument("fixture", type=Path)
    make_parser.add_argument("--transfers", type=int, default=128)
    time_parser = sub.add_parser("time")
    time_parser.add_argument("fixture", type=Path)
    time_parser.add_argument("--runs", type=int, default=15)
    time_parser.add_argument("--label", default="")
    args = parser.parse_args()
    if args.command == "make":
        make(args.fixture, args.transfers)
        return
    seconds = time_blocks(args.fixture, args.runs)
    parts = [
        f"{name} median {statistics.median(v) * 1000:.3f} min {min(v) * 1000:.3f} ms/tx"
        for name, v in seconds.items()
    ]
    print(args.label, " ".join(parts))


if __name__ == "__main__":
    main()
