"""View change as in the PBFT paper: validating VIEW-CHANGE, computing NEW-VIEW.

These are pure functions so that the new primary and every backup run the very
same computation: a backup recomputes the pre-prepares a NEW-VIEW must carry
from the view-changes inside it and rejects the NEW-VIEW on any difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.certificate import Verify
from consensus.config import ReplicaConfig
from consensus.messages import (
    NULL_BATCH,
    Batch,
    Checkpoint,
    Message,
    NewView,
    PreparedCertificate,
    ProposalMetadata,
    ViewChange,
    null_metadata,
    proposal_digest,
    signed_bytes,
)
from consensus.quorum import primary_of


def authentic(message: Message, config: ReplicaConfig, verify: Verify) -> bool:
    """The claimed sender is a validator and its signature covers the message."""
    if not 0 <= message.sender < config.replica_count:
        return False
    return verify(
        config.validators[message.sender],
        signed_bytes(message, config.chain_id),
        message.signature,
    )


def checkpoint_proof_problem(
    seq: int,
    state_root: bytes,
    proof: tuple[Checkpoint, ...],
    config: ReplicaConfig,
    verify: Verify,
) -> str | None:
    """Why ``proof`` does not show (seq, state_root) stable, or None if it does."""
    if seq == 0:
        if proof or state_root != config.genesis_state_root:
            return "genesis checkpoint carries a proof or a foreign root"
        return None
    if seq % config.checkpoint_interval:
        return f"checkpoint {seq} is not on a checkpoint boundary"
    senders = {c.sender for c in proof}
    if len(senders) != len(proof) or len(senders) < config.quorum:
        return "checkpoint proof lacks 2f+1 distinct signers"
    for c in proof:
        if c.seq != seq or c.state_root != state_root:
            return "checkpoint proof does not match"
        if not authentic(c, config, verify):
            return "checkpoint proof has a bad signature"
    return None


def prepared_certificate_problem(
    cert: PreparedCertificate, config: ReplicaConfig, verify: Verify
) -> str | None:
    """Why ``cert`` is not a valid prepared certificate, or None."""
    pp = cert.pre_prepare
    n = config.replica_count
    if pp.sender != primary_of(pp.view, n):
        return "prepared pre-prepare not from the primary of its view"
    if pp.digest != proposal_digest(pp.batch, pp.metadata, config.chain_id):
        return "prepared batch does not match its digest"
    if not authentic(pp, config, verify):
        return "prepared pre-prepare has a bad signature"
    senders = {p.sender for p in cert.prepares}
    if len(senders) != len(cert.prepares) or len(senders) < 2 * config.faulty:
        return "prepared certificate lacks 2f distinct prepares"
    for p in cert.prepares:
        if (p.view, p.seq, p.digest) != (pp.view, pp.seq, pp.digest):
            return "prepare does not match its pre-prepare"
        if p.sender == pp.sender:
            return "prepare from the primary"
        if not authentic(p, config, verify):
            return "prepare has a bad signature"
    return None


def view_change_problem(vc: ViewChange, config: ReplicaConfig, verify: Verify) -> str | None:
    """Why ``vc`` is invalid, or None. The outer signature is checked by the caller."""
    if vc.new_view < 1:
        return "view-change to view 0"
    problem = checkpoint_proof_problem(
        vc.stable_seq, vc.stable_root, vc.checkpoint_proof, config, verify
    )
    if problem is not None:
        return problem
    seen: set[int] = set()
    for cert in vc.prepared:
        pp = cert.pre_prepare
        if pp.seq in seen:
            return f"two prepared certificates for seq {pp.seq}"
        seen.add(pp.seq)
        if not vc.stable_seq < pp.seq <= vc.stable_seq + config.watermark_window:
            return f"prepared seq {pp.seq} outside the sender's watermarks"
        if pp.view >= vc.new_view:
            return "prepared in a view not below the new view"
        problem = prepared_certificate_problem(cert, config, verify)
        if problem is not None:
            return problem
    return None


@dataclass(frozen=True, slots=True)
class NewViewPlan:
    """What NEW-VIEW must contain: the checkpoint it starts from and, per seq,
    (seq, digest, batch, metadata)."""

    stable_seq: int
    stable_root: bytes
    stable_proof: tuple[Checkpoint, ...]
    batches: tuple[tuple[int, bytes, Batch, ProposalMetadata], ...]

    @property
    def max_seq(self) -> int:
        return self.batches[-1][0] if self.batches else self.stable_seq


def plan_new_view(view_changes: tuple[ViewChange, ...], config: ReplicaConfig) -> NewViewPlan:
    """PBFT's O set: for each seq between min-s and max-s, the batch prepared in the
    highest view by any of the view-changes, or the null batch if none prepared it.

    A prepared batch keeps its metadata; a null batch gets ``null_metadata``,
    which every backup recomputes the same way."""
    start = max(view_changes, key=lambda vc: (vc.stable_seq, vc.sender))
    best: dict[int, PreparedCertificate] = {}
    for vc in view_changes:
        for cert in vc.prepared:
            pp = cert.pre_prepare
            if pp.seq <= start.stable_seq:
                continue
            known = best.get(pp.seq)
            if known is None or (pp.view, pp.digest) > (
                known.pre_prepare.view,
                known.pre_prepare.digest,
            ):
                best[pp.seq] = cert
    top = max(best, default=start.stable_seq)
    batches: list[tuple[int, bytes, Batch, ProposalMetadata]] = []
    previous: ProposalMetadata | None = None
    for seq in range(start.stable_seq + 1, top + 1):
        chosen = best.get(seq)
        if chosen is None:
            metadata = null_metadata(view_changes[0].new_view, previous)
            digest = proposal_digest(NULL_BATCH, metadata, config.chain_id)
            batches.append((seq, digest, NULL_BATCH, metadata))
        else:
            pp = chosen.pre_prepare
            metadata = pp.metadata
            batches.append((seq, pp.digest, pp.batch, metadata))
        previous = metadata
    return NewViewPlan(start.stable_seq, start.stable_root, start.checkpoint_proof, tuple(batches))


def new_view_problem(
    nv: NewView, config: ReplicaConfig, verify: Verify
) -> tuple[str | None, NewViewPlan | None]:
    """Recompute NEW-VIEW from its view-changes; (reason, None) on any mismatch."""
    n = config.replica_count
    if nv.sender != primary_of(nv.view, n):
        return "new-view not from the primary", None
    senders = {vc.sender for vc in nv.view_changes}
    if len(senders) != len(nv.view_changes) or len(senders) < config.quorum:
        return "new-view lacks 2f+1 distinct view-changes", None
    for vc in nv.view_changes:
        if vc.new_view != nv.view:
            return "new-view carries a view-change for another view", None
        if not authentic(vc, config, verify):
            return "new-view carries a forged view-change", None
        problem = view_change_problem(vc, config, verify)
        if problem is not None:
            return f"new-view carries an invalid view-change: {problem}", None
    plan = plan_new_view(nv.view_changes, config)
    if len(nv.pre_prepares) != len(plan.batches):
        return "new-view pre-prepares differ from the recomputed ones", None
    for pp, (seq, digest, batch, metadata) in zip(nv.pre_prepares, plan.batches, strict=True):
        if (pp.view, pp.seq, pp.digest, pp.sender) != (nv.view, seq, digest, nv.sender):
            return "new-view pre-prepares differ from the recomputed ones", None
        if pp.batch != batch or pp.metadata != metadata:
            return "new-view batch differs from the prepared one", None
        if not authentic(pp, config, verify):
            return "new-view pre-prepare has a bad signature", None
    return None, plan
