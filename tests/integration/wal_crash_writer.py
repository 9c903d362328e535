"""Writer process for the WAL crash test: appends deterministic record batches until killed.

Run as ``python wal_crash_writer.py WAL_PATH``. It opens the log, checks that
what is there is a batch-aligned prefix of ``batches()``, prints ``ready N``,
then appends batch after batch, printing ``synced N`` (records in the log)
after each ``append`` returns. Every few batches it compacts nothing away
(``live`` keeps all), so a kill can also land inside a compaction's write.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from consensus.messages import Prepare
from consensus.persistence import Record, ViewRecord, VoteRecord
from node.wal import WriteAheadLog


def batch(index: int) -> list[Record]:
    """Batch ``index``: 1 to 7 records (a VIEW record, then PREPARE votes)."""
    size = 1 + index % 7
    records: list[Record] = [ViewRecord(index, index % 2 == 0)]
    for k in range(1, size):
        digest = bytes([(index + k) % 256]) * 32
        # Signatures are exactly 64 bytes: the wire refuses any other length.
        records.append(VoteRecord(Prepare(index, k, digest, k % 4, bytes([k]) * 64)))
    return records


def batches() -> Iterator[list[Record]]:
    index = 0
    while True:
        yield batch(index)
        index += 1


def boundaries(limit: int) -> list[int]:
    """Record counts at which a batch ends, up to ``limit``."""
    ends, total = [0], 0
    for records in batches():
        total += len(records)
        if total > limit:
            return ends
        ends.append(total)
    return ends


def main() -> None:
    with WriteAheadLog(sys.argv[1]) as wal:
        count = len(wal)
        print(f"ready {count}", flush=True)
        total = 0
        for index, records in enumerate(batches()):
            total += len(records)
            if total <= count:
                continue
            wal.append(records)
            print(f"synced {total}", flush=True)
            if index % 5 == 0:
                wal.compact(lambda all_records: all_records)


if __name__ == "__main__":
    main()
