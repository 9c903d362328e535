"""Builders shared by the unit tests and the benchmark: configs, replicas, signed messages."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, TypeVar

from consensus.actions import Action, Broadcast, Execute, Send
from consensus.config import ReplicaConfig
from consensus.events import Event, Executed, MessageReceived, RequestSubmitted, Tick
from consensus.messages import (
    Batch,
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    ProposalMetadata,
    Request,
    ViewChange,
    proposal_digest,
    signed_bytes,
)
from consensus.replica import Replica
from consensus.sim.keys import SIGNATURE_BYTES, public_key, signer, verify

TEST_CHAIN_ID = b"veil-test-chain"
TICK_MS = 100
"""The clock the cluster's ticks carry: ``Tick(now_ms = tick * TICK_MS)``."""

M = TypeVar("M", PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)


def make_config(replica_id: int, nodes: int = 4, **overrides: Any) -> ReplicaConfig:
    settings: dict[str, Any] = {
        "chain_id": TEST_CHAIN_ID,
        "validators": tuple(public_key(i) for i in range(nodes)),
        "replica_id": replica_id,
        "checkpoint_interval": 4,
        "watermark_window": 8,
        "view_change_timeout_ticks": 10,
        "max_view_change_timeout_ticks": 40,
        "view_bound": 16,
        "retransmit_interval_ticks": 5,
        "max_batch_size": 4,
        "signature_bytes": SIGNATURE_BYTES,
    }
    settings.update(overrides)
    return ReplicaConfig(**settings)


def make_replica(replica_id: int, nodes: int = 4, **overrides: Any) -> Replica:
    return Replica(make_config(replica_id, nodes, **overrides), signer(replica_id), verify)


def signed(message: M, chain_id: bytes = TEST_CHAIN_ID) -> M:
    """``message`` signed with its sender's key."""
    signature = signer(message.sender)(signed_bytes(message, chain_id))
    return replace(message, signature=signature)


def request(index: int) -> Request:
    return Request(b"req-%d" % index, b"payload-%d" % index)


def metadata_of(proposed_view: int = 0, timestamp_ms: int = 0) -> ProposalMetadata:
    """Test metadata: by default a batch first proposed in view 0 at time 0."""
    return ProposalMetadata(timestamp_ms, proposed_view)


def digest_of(
    batch: Batch, proposed_view: int = 0, timestamp_ms: int = 0, chain_id: bytes = TEST_CHAIN_ID
) -> bytes:
    return proposal_digest(batch, metadata_of(proposed_view, timestamp_ms), chain_id)


def pre_prepare(
    view: int,
    seq: int,
    batch: Batch,
    sender: int | None = None,
    *,
    proposed_view: int | None = None,
    timestamp_ms: int = 0,
) -> PrePrepare:
    """A signed pre-prepare; a fresh proposal of ``view`` unless ``proposed_view`` says."""
    primary = view % 4 if sender is None else sender
    first = view if proposed_view is None else proposed_view
    metadata = metadata_of(first, timestamp_ms)
    digest = digest_of(batch, first, timestamp_ms)
    return signed(PrePrepare(view, seq, digest, batch, metadata, primary))


def prepare(
    view: int, seq: int, batch: Batch, sender: int, *, proposed_view: int | None = None
) -> Prepare:
    first = view if proposed_view is None else proposed_view
    return signed(Prepare(view, seq, digest_of(batch, first), sender))


def commit(
    view: int, seq: int, batch: Batch, sender: int, *, proposed_view: int | None = None
) -> Commit:
    first = view if proposed_view is None else proposed_view
    return signed(Commit(view, seq, digest_of(batch, first), sender))


def checkpoint(seq: int, root: bytes, sender: int) -> Checkpoint:
    return signed(Checkpoint(seq, root, sender))


class Cluster:
    """Replicas wired by a perfect, instant network: deliver everything, in order.

    ``drop_from`` silences replicas (as if crashed or silent byzantine) and
    ``drop_to`` cuts replicas off from everything their peers send;
    executed roots are a hash chain as in the simulator's application.
    """

    def __init__(self, nodes: int = 4, **overrides: Any) -> None:
        self.replicas = [make_replica(i, nodes, **overrides) for i in range(nodes)]
        self.roots: list[list[bytes]] = [[bytes(32)] for _ in range(nodes)]
        self.executed: list[list[Execute]] = [[] for _ in range(nodes)]
        self.drop_from: set[int] = set()
        self.drop_to: set[int] = set()
        self.actions: list[list[Action]] = [[] for _ in range(nodes)]
        self._queue: list[tuple[int, Event]] = []
        self.now_ms = 0

    def submit(self, req: Request) -> None:
        for i in range(len(self.replicas)):
            self._queue.append((i, RequestSubmitted(req)))
        self.run()

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            self.now_ms += TICK_MS
            for i in range(len(self.replicas)):
                self._queue.append((i, Tick(self.now_ms)))
            self.run()

    def run(self) -> None:
        while self._queue:
            index, event = self._queue.pop(0)
            actions = self.replicas[index].step(event)
            self.actions[index].extend(actions)
            for action in actions:
                if isinstance(action, Broadcast | Send) and index not in self.drop_from:
                    targets = (
                        [action.to]
                        if isinstance(action, Send)
                        else [i for i in range(len(self.replicas)) if i != index]
                    )
                    for target in targets:
                        if target in self.drop_to:
                            continue
                        self._queue.append((target, MessageReceived(index, action.message)))
                elif isinstance(action, Execute):
                    root = hashlib.sha256(self.roots[index][-1] + action.certificate.digest)
                    self.roots[index].append(root.digest())
                    self.executed[index].append(action)
                    self._queue.append((index, Executed(action.seq, self.roots[index][-1])))

    def heights(self) -> list[int]:
        return [len(r) - 1 for r in self.roots]
