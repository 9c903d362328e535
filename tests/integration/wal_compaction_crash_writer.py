"""Writer process for the WAL compaction crash test: appends and compacts with
``consensus.persistence.live_records`` until killed.

Run as ``python wal_compaction_crash_writer.py WAL_PATH``. Its operations are
deterministic (``operations()``: append batch i, and after every fifth batch
compact to the live records), so ``states()`` gives the log after each one.
On start it finds the state the log on disk is in (a restart after a kill),
prints ``ready N`` (N operations done), then goes on and prints ``done N``
after each operation returns (the append or the compaction is synced).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from consensus.persistence import Record, live_records
from node.wal import WriteAheadLog

sys.path.insert(0, str(Path(__file__).parent))
from wal_crash_writer import batch

COMPACT_EVERY_BATCHES = 5
MAX_OPERATIONS = 1_000_000


def operations() -> Iterator[tuple[str, int]]:
    """("append", i) for batch i, and ("compact", i) after every fifth batch."""
    index = 0
    while True:
        yield "append", index
        if index % COMPACT_EVERY_BATCHES == COMPACT_EVERY_BATCHES - 1:
            yield "compact", index
        index += 1


def states() -> Iterator[tuple[Record, ...]]:
    """The log before any operation, then after each one."""
    log: tuple[Record, ...] = ()
    yield log
    for kind, index in operations():
        log = log + tuple(batch(index)) if kind == "append" else tuple(live_records(log))
        yield log


def operations_done(records: tuple[Record, ...]) -> int:
    """How many operations produced ``records`` (the first state equal to it)."""
    for done, state in enumerate(states()):
        if state == records:
            return done
        if done > MAX_OPERATIONS:
            break
    raise SystemExit("the log on disk is no state the writer passes through")


def main() -> None:
    with WriteAheadLog(sys.argv[1]) as wal:
        done = operations_done(wal.records)
        print(f"ready {done}", flush=True)
        for number, (kind, index) in enumerate(operations(), start=1):
            if number <= done:
                continue
            if kind == "append":
                wal.append(batch(index))
            else:
                wal.compact(live_records)
            print(f"done {number}", flush=True)


if __name__ == "__main__":
    main()
