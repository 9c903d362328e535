"""Checkpoint votes: which state root 2f+1 replicas reported for a height.

Checkpoints are accepted at any height above the stable one (a lagging replica
learns from them that it must fetch state), so memory is bounded per sender
instead of by the watermarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from consensus.messages import Checkpoint


class CheckpointOutcome(Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(slots=True)
class CheckpointCollector:
    quorum: int
    max_per_sender: int
    by_sender: dict[int, dict[int, Checkpoint]] = field(default_factory=dict)

    def add(self, checkpoint: Checkpoint) -> CheckpointOutcome:
        mine = self.by_sender.setdefault(checkpoint.sender, {})
        known = mine.get(checkpoint.seq)
        if known is not None:
            if known.state_root == checkpoint.state_root:
                return CheckpointOutcome.DUPLICATE
            return CheckpointOutcome.CONFLICT
        mine[checkpoint.seq] = checkpoint
        if len(mine) > self.max_per_sender:
            # Keep the highest: they are the ones that can still become stable.
            del mine[min(mine)]
        return CheckpointOutcome.ADDED

    def proof_for(self, seq: int, state_root: bytes) -> tuple[Checkpoint, ...] | None:
        """2f+1 matching checkpoints for (seq, state_root), sorted by sender, or None."""
        matching = [
            by_seq[seq]
            for _, by_seq in sorted(self.by_sender.items())
            if seq in by_seq and by_seq[seq].state_root == state_root
        ]
        return tuple(matching[: self.quorum]) if len(matching) >= self.quorum else None

    def garbage_collect(self, stable_seq: int) -> None:
        for by_seq in self.by_sender.values():
            for seq in [s for s in by_seq if s <= stable_seq]:
                del by_seq[seq]
