"""Safety checks run on every step, and the liveness check run after faults heal.

The safety checker sees every Execute and every message an honest replica
signs (including across restarts), so it catches a violation at the step that
causes it:

* agreement: no two honest replicas execute different digests at one height;
* total order: state roots hash-chain the history, so equal roots at every
  height mean every honest history is a prefix of one chain;
* no equivocation: an honest replica never signs two different messages for
  the same (kind, view, seq), checkpoint height, or view-change target;
* every executed block carries a commit certificate that verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.certificate import CommitCertificate, verify_commit_certificate
from consensus.messages import (
    Checkpoint,
    Commit,
    ForwardedRequests,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
)
from consensus.sim.keys import public_key, verify


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
        case ForwardedRequests():
            return None


def signature_content(message: Message) -> object:
    match message:
        case PrePrepare() | Prepare() | Commit():
            return message.digest
        case Checkpoint():
            return message.state_root
        case ViewChange() | NewView() | ForwardedRequests():
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
