"""The simulated application: a hash chain of executed batches.

state_root(h) = SHA-256(state_root(h-1) || digest(h)), so two replicas with the
same root at a height have the same history up to it (total order check), and a
state transfer is a copy of a prefix of a peer's history, checked against the
stable checkpoint's root before it is installed (see ``state_transfer``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consensus.config import GENESIS_STATE_ROOT
from consensus.messages import Batch, ProposalMetadata


def next_root(root: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(root + digest).digest()


@dataclass(slots=True)
class SimApp:
    digests: list[bytes] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=lambda: [GENESIS_STATE_ROOT])
    batches: list[Batch] = field(default_factory=list)
    metadata: list[ProposalMetadata] = field(default_factory=list)
    request_ids: list[tuple[bytes, ...]] = field(default_factory=list)
    """Per height, the requests executed there (a repeat of an earlier one is skipped)."""
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
        self._apply(digest, batch, metadata)
        return self.root

    def _apply(self, digest: bytes, batch: Batch, metadata: ProposalMetadata) -> None:
        seq = self.height + 1
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
        self.batches.append(batch)
        self.metadata.append(metadata)
        self.request_ids.append(tuple(fresh))
        self.roots.append(next_root(self.root, digest))

    def recent_ids(self, window_heights: int) -> tuple[bytes, ...]:
        """The request ids of the last ``window_heights`` blocks: what a restart
        or a state transfer hands the core."""
        first = max(0, self.height - window_heights)
        return tuple(rid for ids in self.request_ids[first:] for rid in ids)

    def install(
        self, digests: list[bytes], batches: list[Batch], metadata: list[ProposalMetadata]
    ) -> None:
        """State transfer: adopt a verified history (see ``state_transfer.history_problem``)."""
        fresh = SimApp()
        for digest, batch, meta in zip(digests, batches, metadata, strict=True):
            fresh._apply(digest, batch, meta)
        for name in SimApp.__slots__:
            setattr(self, name, getattr(fresh, name))
