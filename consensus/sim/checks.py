"""Safety checks run on every step, and the liveness check run after faults heal.

The safety checker sees every Execute and every message an honest replica
signs (including across restarts), so it catches a violation at the step that
causes it:

* agreement: no two honest replicas execute different digests at one height;
* total order: state roots hash-chain the history, so equal roots at every
  height mean every honest history is a prefix of one chain;
* no equivocation: an honest replica never signs two different messages for
  the same (kind, view, seq), checkpoint height, or view-change target;
* every executed block carries a commit certificate that verifies;
* resources: no honest replica keeps a digest, root or signature of the wrong
  length (a byzantine peer's 1 MiB fields must be refused, not stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.certificate import CommitCertificate, verify_commit_certificate
from consensus.messages import (
    BatchReply,
    Checkpoint,
    Commit,
    FetchBatch,
    ForwardedRequests,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    Status,
    ViewChange,
)
from consensus.replica_state import ReplicaState
from consensus.sim.keys import SIGNATURE_BYTES, public_key, verify

DIGEST_BYTES = 32


def _field_problem(message: Message) -> str | None:
    if len(message.signature) != SIGNATURE_BYTES:
        return f"keeps a {type(message).__name__} with a {len(message.signature)}-byte signature"
    if isinstance(message, Checkpoint):
        value = message.state_root
    elif isinstance(message, PrePrepare | Prepare | Commit):
        value = message.digest
    else:
        value = message.stable_root if isinstance(message, ViewChange) else bytes(DIGEST_BYTES)
    if len(value) != DIGEST_BYTES:
        return f"keeps a {type(message).__name__} with a {len(value)}-byte digest or root"
    return None


def oversized_retained(state: ReplicaState) -> str | None:
    """The first stored peer message with a field of the wrong length, if any."""
    stored: list[Message] = []
    for slot in state.log.slots.values():
        stored.extend(slot.pre_prepares.values())
        for prepares in slot.prepares.values():
            stored.extend(prepares.values())
        for by_sender in slot.commits.values():
            for commits in by_sender.values():
                stored.extend(commits.values())
        digests = [*slot.batches, *slot.wanted]
        digests.extend(d for by_digest in slot.spare.values() for d in by_digest)
        if any(len(digest) != DIGEST_BYTES for digest in digests):
            return f"keeps a batch digest of the wrong length at seq {slot.seq}"
    for by_seq in state.checkpoints.by_sender.values():
        stored.extend(by_seq.values())
    for by_sender_vc in state.view_changes.values():
        stored.extend(by_sender_vc.values())
    for message in stored:
        problem = _field_problem(message)
        if problem is not None:
            return problem
    return None


def signature_slot(message: Message) -> tuple[object, ...] | None:
    """Messages an honest replica may sign at most one version of (None: any number)."""
    match message:
        case PrePrepare() | Prepare() | Commit():
            return (type(message).__name__, message.sender, message.view, message.seq)
        case Checkpoint():
            return ("Checkpoint", message.sender, message.seq)
        case ViewChange():
            return ("ViewChange", message.sender, message.new_view)
        case NewView():
            return ("NewView", message.sender, message.view)
        case FetchBatch() | BatchReply() | ForwardedRequests() | Status():
            return None


def signature_content(message: Message) -> object:
    match message:
        case PrePrepare() | Prepare() | Commit():
            return message.digest
        case Checkpoint():
            return message.state_root
        case (
            ViewChange() | NewView() | FetchBatch() | BatchReply() | ForwardedRequests() | Status()
        ):
            return message


@dataclass(slots=True)
class SafetyChecker:
    chain_id: bytes
    nodes: int
    digests: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    roots: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    signed: dict[tuple[object, ...], object] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def executed(
        self, replica: int, seq: int, digest: bytes, root: bytes, cert: CommitCertificate | None
    ) -> None:
        seen = self.digests.setdefault(seq, (replica, digest))
        if seen[1] != digest:
            self.violations.append(
                f"agreement: replicas {seen[0]} and {replica} executed different digests at {seq}"
            )
        self.state_root(replica, seq, root)
        if cert is not None:
            validators = [public_key(i) for i in range(self.nodes)]
            valid = verify_commit_certificate(cert, validators, verify, self.chain_id)
            if not valid or cert.seq != seq or cert.digest != digest:
                self.violations.append(f"certificate: replica {replica} executed {seq} without one")

    def state_root(self, replica: int, seq: int, root: bytes) -> None:
        seen = self.roots.setdefault(seq, (replica, root))
        if seen[1] != root:
            self.violations.append(
                f"total order: replicas {seen[0]} and {replica} have different roots at {seq}"
            )

    def signed_by_honest(self, message: Message) -> None:
        slot = signature_slot(message)
        if slot is None:
            return
        content = signature_content(message)
        seen = self.signed.setdefault(slot, content)
        if seen != content:
            self.violations.append(f"equivocation: honest replica signed two versions of {slot}")
