"""The simulated application: a hash chain of executed batches.

state_root(h) = SHA-256(state_root(h-1) || digest(h)), so two replicas with the
same root at a height have the same history up to it (total order check), and a
state transfer is a copy of a prefix of a peer's history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consensus.config import GENESIS_STATE_ROOT
from consensus.messages import Batch, ProposalMetadata


@dataclass(slots=True)
class SimApp:
    digests: list[bytes] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=lambda: [GENESIS_STATE_ROOT])
    request_ids: list[tuple[bytes, ...]] = field(default_factory=list)
    executed_ids: dict[bytes, int] = field(default_factory=dict)
    timestamps_ms: list[int] = field(default_factory=list)
    duplicates_skipped: int = 0

    @property
    def height(self) -> int:
        return len(self.digests)

    @property
    def root(self) -> bytes:
        return self.roots[-1]

    def execute(self, seq: int, digest: bytes, batch: Batch, metadata: ProposalMetadata) -> bytes:
        """Execute one block. Its time is the metadata's, never before the
        parent's: re-issued and null batches may carry an earlier stamp (the
        ledger clamps the same way)."""
        if seq != self.height + 1:
            raise RuntimeError(f"executed {seq} at height {self.height}")
        parent_ms = self.timestamps_ms[-1] if self.timestamps_ms else 0
        self.timestamps_ms.append(max(parent_ms, metadata.timestamp_ms))
        fresh: list[bytes] = []
        for request in batch:
            if request.request_id in self.executed_ids:
                self.duplicates_skipped += 1
            else:
                self.executed_ids[request.request_id] = seq
                fresh.append(request.request_id)
        self.digests.append(digest)
        self.request_ids.append(tuple(fresh))
        self.roots.append(hashlib.sha256(self.root + digest).digest())
        return self.root

    def recent_ids(self, window_heights: int) -> tuple[bytes, ...]:
        """The request ids of the last ``window_heights`` blocks: what a restart
        or a state transfer hands the core."""
        first = max(0, self.height - window_heights)
        return tuple(rid for ids in self.request_ids[first:] for rid in ids)

    def copy_prefix_from(self, other: SimApp, height: int) -> None:
        """State transfer: adopt ``other``'s history up to ``height``."""
        self.digests = list(other.digests[:height])
        self.roots = list(other.roots[: height + 1])
        self.request_ids = list(other.request_ids[:height])
        self.timestamps_ms = list(other.timestamps_ms[:height])
        self.executed_ids = {
            rid: seq + 1 for seq, ids in enumerate(self.request_ids) for rid in ids
        }
