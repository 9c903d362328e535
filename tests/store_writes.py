"""``block_write``: a ``BlockWrite`` for store tests that care about blocks as opaque bytes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ledger.batch import BlockMetadata
from ledger.store import BlockWrite

NO_METADATA = BlockMetadata(0, 0)


def block_write(  # noqa: PLR0917 (mirrors the record's field order, for brevity)
    height: int,
    block_hash: bytes,
    block_bytes: bytes,
    certificate_bytes: bytes,
    delta: Mapping[bytes, bytes | None],
    tx_ids: Iterable[bytes],
    owner_index_changes: Iterable[tuple[bytes, bytes, bool]] = (),
) -> BlockWrite:
    return BlockWrite(
        height=height,
        block_hash=block_hash,
        block_bytes=block_bytes,
        certificate_bytes=certificate_bytes,
        metadata=NO_METADATA,
        rejected=(),
        delta=delta,
        tx_ids=tuple(tx_ids),
        owner_index_changes=tuple(owner_index_changes),
    )
