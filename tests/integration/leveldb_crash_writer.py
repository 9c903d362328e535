"""Writer process for the LevelDB crash tests: commits deterministic blocks until killed.

Run as ``python leveldb_crash_writer.py DB_PATH [MAX_HEIGHT]``. It opens (or
creates) a ``LevelDBStore``, prints ``ready <height>``, then commits block after
block, printing ``committed <height>`` after each commit returns. The parent
SIGKILLs it at a random moment and checks the reopened store against
``block_for``, which both sides import from this file.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

from ledger.batch import BlockMetadata, RejectedRequest
from ledger.codec import encode_value
from ledger.leveldb_store import LevelDBStore
from ledger.state import StateDelta, account_key, output_key
from ledger.store import BlockWrite, Store

OUTPUTS_PER_BLOCK = 24
TXS_PER_BLOCK = 6
OWNERS = 5
BLOCK_PAYLOAD_BYTES = 48 * 1024


def sha(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def owner_of(index: int) -> bytes:
    return sha("owner", index % OWNERS)


def output_id(height: int, index: int) -> bytes:
    return sha("output", height, index)


@dataclass(frozen=True)
class Block:
    height: int
    block_hash: bytes
    block_bytes: bytes
    certificate: bytes
    metadata: BlockMetadata
    rejected: tuple[RejectedRequest, ...]
    delta: StateDelta
    tx_ids: tuple[bytes, ...]
    owner_changes: tuple[tuple[bytes, bytes, bool], ...]


def block_for(height: int) -> Block:
    """Block ``height`` of the test chain: creates outputs, spends some from two blocks ago."""
    delta = StateDelta()
    owner_changes: list[tuple[bytes, bytes, bool]] = []
    if height >= 1:
        for index in range(OUTPUTS_PER_BLOCK):
            oid = output_id(height, index)
            delta.put(output_key(oid), sha("value", height, index) * (1 + index % 3))
            owner_changes.append((owner_of(index), oid, True))
    if height >= 3:
        for index in range(0, OUTPUTS_PER_BLOCK, 3):
            oid = output_id(height - 2, index)
            delta.delete(output_key(oid))
            owner_changes.append((owner_of(index), oid, False))
    delta.put(account_key(sha("account", height % 7)), encode_value(("seen at", height)))
    tx_ids = tuple(sha("tx", height, t) for t in range(TXS_PER_BLOCK if height else 0))
    payload = hashlib.shake_256(b"payload%d" % height).digest(BLOCK_PAYLOAD_BYTES)
    block_bytes = encode_value((height, tx_ids, payload))
    certificate = encode_value(("certificate", height, sha("cert", height)))
    metadata = BlockMetadata(1_000 * height, height % 3)
    rejected = tuple(
        RejectedRequest(2 * i + 1, "MALFORMED", sha("junk", height, i)) for i in range(height % 3)
    )
    return Block(
        height,
        hashlib.sha256(block_bytes).digest(),
        block_bytes,
        certificate,
        metadata,
        rejected,
        delta,
        tx_ids,
        tuple(owner_changes),
    )


def commit(store: Store, block: Block) -> bytes:
    return store.commit_block(
        BlockWrite(
            height=block.height,
            block_hash=block.block_hash,
            block_bytes=block.block_bytes,
            certificate_bytes=block.certificate,
            metadata=block.metadata,
            rejected=block.rejected,
            delta=block.delta,
            tx_ids=block.tx_ids,
            owner_index_changes=block.owner_changes,
        )
    )


def main(argv: list[str]) -> int:
    path = argv[1]
    max_height = int(argv[2]) if len(argv) > 2 else 1 << 62
    store = LevelDBStore(path)
    print(f"ready {store.height()}", flush=True)
    while store.height() < max_height:
        commit(store, block_for(store.height() + 1))
        print(f"committed {store.height()}", flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
