"""The message log: per sequence number, what each replica said in each view.

Slots exist only between the watermarks, so the log is bounded by the window
times the views seen; ``garbage_collect`` drops everything at or below a stable
checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.certificate import CommitCertificate
from consensus.messages import Batch, Commit, Prepare, PreparedCertificate, PrePrepare

MAX_BATCHES_PER_SLOT = 8
"""Distinct batches remembered per slot; a byzantine primary cannot grow this."""


@dataclass(slots=True)
class Slot:
    seq: int
    pre_prepares: dict[int, PrePrepare] = field(default_factory=dict)
    prepares: dict[int, dict[int, Prepare]] = field(default_factory=dict)
    commits: dict[int, dict[int, Commit]] = field(default_factory=dict)
    batches: dict[bytes, Batch] = field(default_factory=dict)
    prepared: PreparedCertificate | None = None
    committed: CommitCertificate | None = None

    def remember_batch(self, digest: bytes, batch: Batch) -> None:
        if digest not in self.batches and len(self.batches) < MAX_BATCHES_PER_SLOT:
            self.batches[digest] = batch

    def prepared_certificate(self, view: int, needed: int) -> PreparedCertificate | None:
        """The pre-prepare of ``view`` with ``needed`` matching prepares, if we have them."""
        pre_prepare = self.pre_prepares.get(view)
        if pre_prepare is None:
            return None
        matching = [
            p for p in self.prepares.get(view, {}).values() if p.digest == pre_prepare.digest
        ]
        if len(matching) < needed:
            return None
        matching.sort(key=lambda p: p.sender)
        return PreparedCertificate(pre_prepare, tuple(matching[:needed]))

    def commit_certificate(self, needed: int) -> CommitCertificate | None:
        """2f+1 matching commits in one view whose batch we hold; lowest view first."""
        for view in sorted(self.commits):
            by_digest: dict[bytes, list[Commit]] = {}
            for commit in self.commits[view].values():
                by_digest.setdefault(commit.digest, []).append(commit)
            for digest, commits in sorted(by_digest.items()):
                if len(commits) >= needed and digest in self.batches:
                    commits.sort(key=lambda c: c.sender)
                    return CommitCertificate(view, self.seq, digest, tuple(commits[:needed]))
        return None


@dataclass(slots=True)
class MessageLog:
    slots: dict[int, Slot] = field(default_factory=dict)

    def slot(self, seq: int) -> Slot:
        found = self.slots.get(seq)
        if found is None:
            found = self.slots[seq] = Slot(seq)
        return found

    def get(self, seq: int) -> Slot | None:
        return self.slots.get(seq)

    def garbage_collect(self, stable_seq: int) -> None:
        for seq in [s for s in self.slots if s <= stable_seq]:
            del self.slots[seq]

    def prepared_certificates(self) -> tuple[PreparedCertificate, ...]:
        return tuple(
            slot.prepared for _, slot in sorted(self.slots.items()) if slot.prepared is not None
        )
