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
from consensus.messages import Batch


def next_root(root: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(root + digest).digest()


@dataclass(slots=True)
class SimApp:
    digests: list[bytes] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=lambda: [GENESIS_STATE_ROOT])
    batches: list[Batch] = field(default_factory=list)
    executed_ids: dict[bytes, int] = field(default_factory=dict)
    duplicates_skipped: int = 0

    @property
    def height(self) -> int:
        return len(self.digests)

    @property
    def root(self) -> bytes:
        return self.roots[-1]

    def execute(self, seq: int, digest: bytes, batch: Batch) -> bytes:
        if seq != self.height + 1:
            raise RuntimeError(f"executed {seq} at height {self.height}")
        for request in batch:
            if request.request_id in self.executed_ids:
                self.duplicates_skipped += 1
            else:
                self.executed_ids[request.request_id] = seq
        self.digests.append(digest)
        self.batches.append(batch)
        self.roots.append(next_root(self.root, digest))
        return self.root

    def install(self, digests: list[bytes], batches: list[Batch]) -> None:
        """State transfer: adopt a verified history (see ``state_transfer.verify_history``)."""
        self.digests = list(digests)
        self.batches = list(batches)
        self.roots = [GENESIS_STATE_ROOT]
        for digest in digests:
            self.roots.append(next_root(self.roots[-1], digest))
        self.executed_ids = {}
        for seq, batch in enumerate(batches, start=1):
            for request in batch:
                self.executed_ids.setdefault(request.request_id, seq)
