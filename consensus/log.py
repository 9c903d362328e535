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
    PrePrepareHeader,
    ProposalMetadata,
    header_of,
    with_batch,
)

Proposal = tuple[Batch, ProposalMetadata]
"""A batch and the metadata its digest covers: the unit stored and fetched."""

MAX_SPARE_BATCHES_PER_VIEW = 2
"""Batches kept per slot and view (so per signer: one primary per view) that
nothing names yet: an equivocating or not-yet-run primary's. Evicted first."""

MAX_SPARE_VIEWS = 8
"""Views per slot whose spare batches are kept; the oldest inserted goes first.
A spare batch that is evicted and later needed is fetched by digest."""

MAX_PARKED_PRE_PREPARES = 8
"""Pre-prepares kept per slot for views the replica is not running. A byzantine
primary of every n-th view cannot grow this; one that is dropped only costs a
signature check again when it is retransmitted."""

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
    # Batches the protocol needs (named by our own vote, a verified NEW-VIEW,
    # a prepared certificate or a commit quorum): never refused. Their number
    # is bounded by the protocol, not by a cap that junk could fill.
    batches: dict[bytes, Batch] = field(default_factory=dict)
    # view -> digest -> (batch, metadata): signed by the view's primary, named
    # by nothing yet; bounded and evicted first (issue 8 §1.1).
    spare: dict[int, dict[bytes, Proposal]] = field(default_factory=dict)
    # Digests needed but not held: fetched from peers by digest.
    wanted: set[bytes] = field(default_factory=set)
    # view -> a pre-prepare a verified NEW-VIEW re-issued whose batch we still
    # fetch; it becomes a full pre-prepare in ``pre_prepares`` when it arrives.
    headers: dict[int, PrePrepareHeader] = field(default_factory=dict)
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
        pp = pre_prepare
        self.keep_spare(pp.view, pp.digest, pp.batch, pp.metadata)

    def own_commit(self, view: int, me: int) -> Commit | None:
        return next(iter(self.commits.get(view, {}).get(me, {}).values()), None)

    def keep_needed(self, digest: bytes, batch: Batch, metadata: ProposalMetadata) -> None:
        """Hold a proposal the protocol needs; the caller checked ``digest`` is its digest."""
        self.batches[digest] = batch
        self.metadata[digest] = metadata
        self.wanted.discard(digest)
        for by_digest in self.spare.values():
            by_digest.pop(digest, None)
        for view, header in list(self.headers.items()):
            if header.digest == digest:
                self.pre_prepares[view] = with_batch(header, batch)
                del self.headers[view]

    def adopt_header(self, header: PrePrepareHeader, batch: Batch | None) -> Batch | None:
        """Install a pre-prepare a verified NEW-VIEW re-issued: in full if its
        batch is known (``batch``, held or spare), else as a header whose batch
        is wanted. Returns the batch if known."""
        if batch is None:
            found = self.need(header.digest)
            batch = None if found is None else found[0]
        if batch is None:
            self.headers[header.view] = header
            return None
        self.keep_needed(header.digest, batch, header.metadata)
        self.pre_prepares[header.view] = with_batch(header, batch)
        return batch

    def keep_spare(
        self, view: int, digest: bytes, batch: Batch, metadata: ProposalMetadata
    ) -> None:
        """Hold a signed proposal nothing names yet, within the junk bounds."""
        if digest in self.batches:
            return
        if digest in self.wanted:
            self.keep_needed(digest, batch, metadata)
            return
        by_digest = self.spare.get(view)
        if by_digest is None:
            if len(self.spare) >= MAX_SPARE_VIEWS:
                del self.spare[next(iter(self.spare))]
            by_digest = self.spare[view] = {}
        if digest not in by_digest and len(by_digest) >= MAX_SPARE_BATCHES_PER_VIEW:
            del by_digest[next(iter(by_digest))]
        by_digest[digest] = (batch, metadata)

    def proposal_for(self, digest: bytes) -> Proposal | None:
        """The (batch, metadata) with ``digest``, needed or spare, if held."""
        batch = self.batches.get(digest)
        if batch is not None:
            return batch, self.metadata[digest]
        for by_digest in self.spare.values():
            found = by_digest.get(digest)
            if found is not None:
                return found
        return None

    def need(self, digest: bytes) -> Proposal | None:
        """Mark ``digest`` needed: promote it from the spares, or want it."""
        found = self.proposal_for(digest)
        if found is None:
            self.wanted.add(digest)
        else:
            self.keep_needed(digest, *found)
        return found

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
        header = self.headers.get(view) if pre_prepare is None else header_of(pre_prepare)
        if header is None:
            return None
        matching = [p for p in self.prepares.get(view, {}).values() if p.digest == header.digest]
        if len(matching) < needed:
            return None
        matching.sort(key=lambda p: p.sender)
        return PreparedCertificate(header, tuple(matching[:needed]))

    def commit_certificate(self, needed: int) -> CommitCertificate | None:
        """2f+1 matching commits in one view, lowest view first. The batch may
        still be missing: the caller marks it needed and fetches it."""
        for view in sorted(self.commits):
            by_digest: dict[bytes, list[Commit]] = {}
            for by_sender_digest in self.commits[view].values():
                for commit in by_sender_digest.values():
                    by_digest.setdefault(commit.digest, []).append(commit)
            for digest, commits in sorted(by_digest.items()):
                if len(commits) >= needed:
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
