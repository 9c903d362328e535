"""What consensus ordered beside a block: the proposal's metadata and the rejected requests.

The batch ordered at consensus seq ``s`` becomes the block at height ``s``
(``ledger.execute.execute_batch``). The block holds only the valid txs, but the
commit certificate signs the consensus digest of the whole batch: the
metadata and every request, the rejected ones included. So the store keeps,
with every block, the metadata and each rejected request (its position in the
batch, its reason and its bytes): with the block they give back the batch, and
a client can recompute the digest the certificate signs (docs/ledger.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from ledger.codec import U32, U64, DecodeError, MaxLen, Record
from ledger.reasons import Reason

MAX_REASON_CHARS: Final = 64


@dataclass(frozen=True, slots=True)
class BlockMetadata(Record):
    """The primary's proposal metadata, bound into the consensus digest of the batch.

    ``proposed_view`` is the view in which the batch was first proposed (a
    NEW-VIEW re-issue keeps it): it names the block's proposer.
    """

    timestamp_ms: U64
    proposed_view: U64


@dataclass(frozen=True, slots=True)
class RejectedRequest(Record):
    """A request of the batch that is not in the block, and why."""

    index_in_batch: U32
    reason_code: Annotated[str, MaxLen(MAX_REASON_CHARS)]
    payload: bytes

    @property
    def reason(self) -> Reason:
        return Reason(self.reason_code)


@dataclass(frozen=True, slots=True)
class RejectedList(Record):
    """The stored form of a block's rejected requests, in batch order."""

    requests: tuple[RejectedRequest, ...]


def decode_rejected_list(data: bytes, *, max_bytes: int) -> tuple[RejectedRequest, ...]:
    """Strictly decode a stored rejected list; every reason must be a known code."""
    requests = RejectedList.decode(data, max_bytes=max_bytes).requests
    known = {reason.value for reason in Reason}
    previous = -1
    for request in requests:
        if request.reason_code not in known:
            raise DecodeError("UNKNOWN_REASON", f"reason code {request.reason_code!r}")
        if request.index_in_batch <= previous:
            raise DecodeError("ORDER", "rejected requests are not in batch order")
        previous = request.index_in_batch
    return requests


class BatchMismatchError(ValueError):
    """A block and a rejected list that cannot come from one batch."""


def reassemble_batch(
    block_txs: Sequence[bytes], rejected: Sequence[RejectedRequest]
) -> tuple[bytes, ...]:
    """The batch's request payloads in batch order: the rejected ones at their indices,
    the block's txs (their encodings) filling the other places in order.

    This is what a client hashes, with the metadata, to recompute the digest the
    commit certificate signs (docs/ledger.md). Raises ``BatchMismatchError`` if
    the indices are out of order or leave a hole.
    """
    total = len(block_txs) + len(rejected)
    payloads: list[bytes | None] = [None] * total
    previous = -1
    for request in rejected:
        index = request.index_in_batch
        if not previous < index < total:
            raise BatchMismatchError(f"rejected index {index} out of order or beyond {total}")
        payloads[index] = request.payload
        previous = index
    txs = iter(block_txs)
    return tuple(p if p is not None else next(txs) for p in payloads)
