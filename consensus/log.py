"""The message log: per sequence number, what each replica said in each view.

Slots exist only between the watermarks, so the log is bounded by the window
times the views seen; ``garbage_collect`` drops everything at or below a stable
checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.certificate import CommitCertificate
from consensus.messages import (
    Batch,
    Commit,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ProposalMetadata,
)

MAX_BATCHES_PER_SLOT = 8
"""Distinct batches remembered per slot; a byzantine primary cannot grow this."""

MAX_PARKED_PRE_PREPARES = 8
"""Pre-prepares kept per slot for views the replica is not running. A byzantine
primary of every n-th view cannot grow this; one that is dropped only costs a
signature check again when it is retransmitted, and its batch is remembered."""

MAX_COMMITS_PER_SENDER = 2
"""Distinct digests remembered per sender, view and slot."""


@dataclass(slots=True)
class Slot:
    seq: int
    pre_prepares: dict[int, PrePrepare] = field(default_factory=dict)
    prepares: dict[int, dict[int, Prepare]] = field(default_factory=dict)
    # view -> sender -> digest -> commit. A byzantine sender may sign two digests
    # (we keep at most MAX_COMMITS_PER_SENDER): an honest relay of its real commit
    # must still count, or a replica it lied to could never assemble a certificate.
    commits: dict[int, dict[int, dict[bytes, Commit]]] = field(default_factory=dict)
    batches: dict[bytes, Batch] = field(default_factory=dict)
    # digest -> the metadata bound with the batch (same keys as ``batches``).
    metadata: dict[bytes, ProposalMetadata] = field(default_factory=dict)
    prepared: PreparedCertificate | None = None
    committed: CommitCertificate | None = None

    def add_commit(self, commit: Commit) -> bool:
        """Store ``commit``; False if dropped. A sender over its quota loses its
        least-supported digest, so a byzantine flood of made-up digests cannot
        crowd out an honestly relayed copy of its real commit."""
        by_sender = self.commits.setdefault(commit.view, {})
        mine = by_sender.setdefault(commit.sender, {})
        if len(mine) >= MAX_COMMITS_PER_SENDER:

            def support(digest: bytes) -> int:
                return sum(1 for other in by_sender.values() if digest in other)

            weakest = min(mine, key=lambda d: (support(d), d))
            if support(commit.digest) + 1 <= support(weakest):
                return False
            del mine[weakest]
        mine[commit.digest] = commit
        return True

    def park_pre_prepare(self, pre_prepare: PrePrepare) -> None:
        """Keep a pre-prepare of a view we are not running, within the cap."""
        if (
            pre_prepare.view in self.pre_prepares
            or len(self.pre_prepares) < MAX_PARKED_PRE_PREPARES
        ):
            self.pre_prepares[pre_prepare.view] = pre_prepare
        self.remember_batch(pre_prepare.digest, pre_prepare.batch, pre_prepare.metadata)

    def own_commit(self, view: int, me: int) -> Commit | None:
        return next(iter(self.commits.get(view, {}).get(me, {}).values()), None)

    def remember_batch(self, digest: bytes, batch: Batch, metadata: ProposalMetadata) -> None:
        if digest not in self.batches and len(self.batches) < MAX_BATCHES_PER_SLOT:
            self.batches[digest] = batch
            self.metadata[digest] = metadata

    def known_metadata(self, view: int) -> ProposalMetadata | None:
        """The metadata of this slot's batch as far as we know it: the
        committed one, else the one proposed in ``view``."""
        if self.committed is not None:
            return self.metadata.get(self.committed.digest)
        pre_prepare = self.pre_prepares.get(view)
        return None if pre_prepare is None else pre_prepare.metadata

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
            for by_sender_digest in self.commits[view].values():
                for commit in by_sender_digest.values():
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
