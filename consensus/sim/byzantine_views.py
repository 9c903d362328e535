"""Byzantine view-change contents: lying VIEW-CHANGEs and equivocating NEW-VIEWs.

Every lie is validly signed by the byzantine replica and built only from
certificates and checkpoint proofs that really verify (stale ones it kept, or
fewer than it has), so honest replicas cannot refuse it as invalid: the
protocol must stay safe and live although 2f+1 view-changes may include it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from consensus.config import ReplicaConfig
from consensus.messages import (
    Checkpoint,
    Message,
    NewView,
    PreparedCertificate,
    PrePrepareHeader,
    ViewChange,
    signed_bytes,
)
from consensus.view_change import plan_new_view

M = TypeVar("M", PrePrepareHeader, ViewChange, NewView)

MAX_KEPT_CERTIFICATES = 64
MAX_KEPT_PROOFS = 8

StableProof = tuple[int, bytes, tuple[Checkpoint, ...]]
"""(stable seq, stable root, 2f+1 checkpoints) as a VIEW-CHANGE carries it."""


@dataclass(slots=True)
class ViewChangeLiar:
    """What the byzantine replica remembers to lie with, and the lies it tells."""

    me: int
    config: ReplicaConfig
    sign: Callable[[bytes], bytes]
    certificates: dict[tuple[int, int], PreparedCertificate] = field(default_factory=dict)
    proofs: dict[int, StableProof] = field(default_factory=dict)
    view_changes: dict[int, dict[int, ViewChange]] = field(default_factory=dict)

    def _resign(self, message: M) -> M:
        return replace(message, signature=self.sign(signed_bytes(message, self.config.chain_id)))

    def learn(self, message: Message) -> None:
        """Keep valid material from every VIEW-CHANGE seen (own, received, inside NEW-VIEWs)."""
        if isinstance(message, NewView):
            for vc in message.view_changes:
                self.learn(vc)
            return
        if not isinstance(message, ViewChange):
            return
        by_sender = self.view_changes.setdefault(message.new_view, {})
        by_sender.setdefault(message.sender, message)
        for view in sorted(self.view_changes)[:-4]:
            del self.view_changes[view]
        if len(self.proofs) < MAX_KEPT_PROOFS:
            self.proofs.setdefault(
                message.stable_seq,
                (message.stable_seq, message.stable_root, message.checkpoint_proof),
            )
        for cert in message.prepared:
            if len(self.certificates) < MAX_KEPT_CERTIFICATES:
                pp = cert.pre_prepare
                self.certificates.setdefault((pp.seq, pp.view), cert)

    def lie(self, honest: ViewChange, variant: int) -> ViewChange:
        """variant 0: the honest one; 1: omit every prepared certificate;
        2: the oldest stable checkpoint known, with the oldest-view certificate
        known for each seq above it (stale but valid)."""
        if variant == 1:
            return self._resign(replace(honest, prepared=()))
        if variant == 2:
            return self._stale(honest)
        return honest

    def _stale(self, honest: ViewChange) -> ViewChange:
        seq, root, proof = min(self.proofs.values(), default=self._proof_of(honest))
        if seq > honest.stable_seq:
            seq, root, proof = self._proof_of(honest)
        window = self.config.watermark_window
        oldest: dict[int, PreparedCertificate] = {}
        for (cert_seq, view), cert in sorted(self.certificates.items()):
            if seq < cert_seq <= seq + window and view < honest.new_view:
                oldest.setdefault(cert_seq, cert)
        stale = replace(
            honest,
            stable_seq=seq,
            stable_root=root,
            checkpoint_proof=proof,
            prepared=tuple(cert for _, cert in sorted(oldest.items())),
        )
        return self._resign(stale)

    @staticmethod
    def _proof_of(vc: ViewChange) -> StableProof:
        return (vc.stable_seq, vc.stable_root, vc.checkpoint_proof)

    def other_new_view(self, honest: NewView) -> NewView:
        """A second, valid NEW-VIEW for the same view: the other view-changes it
        carries plus a lying view-change of our own (no prepared certificates,
        oldest checkpoint), so backups that get it may re-issue other batches."""
        own = next((vc for vc in honest.view_changes if vc.sender == self.me), None)
        if own is None:
            own = self.view_changes.get(honest.view, {}).get(self.me)
        others = [vc for vc in honest.view_changes if vc.sender != self.me]
        if own is None:
            # We never signed a VIEW-CHANGE for this view: reorder instead, which
            # still gives a different signed NEW-VIEW.
            view_changes = tuple(reversed(honest.view_changes))
        else:
            liar = self._resign(replace(self._stale(own), prepared=()))
            view_changes = (*others[: self.config.quorum - 1], liar)
        plan = plan_new_view(view_changes, self.config)
        headers = tuple(
            self._resign(PrePrepareHeader(honest.view, seq, digest, metadata, self.me))
            for seq, digest, _, metadata in plan.proposals
        )
        return self._resign(NewView(honest.view, view_changes, headers, self.me))
