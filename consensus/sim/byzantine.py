"""Byzantine behaviours: a real Replica whose outgoing traffic is rewritten.

The byzantine replica holds only its own signing key, so everything it sends in
its own name verifies, and anything it forges in another's name does not.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from consensus.config import ReplicaConfig
from consensus.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    ProposalMetadata,
    Request,
    ViewChange,
    proposal_digest,
    signed_bytes,
)
from consensus.quorum import primary_of
from consensus.sim.byzantine_views import ViewChangeLiar

BYZANTINE_KINDS = (
    "equivocating_primary",
    "conflicting_votes",
    "bad_signatures",
    "replay_old_view",
    "huge_view",
    "silent_primary",
    "slow_primary",
    "lying_view_change",
    "equivocating_new_view",
    "junk_pre_prepares",
    "oversized_fields",
    "censoring_primary",
    "wrong_checkpoint_root",
    "lying_state_source",
)

JUNK_PER_SLOT = 8
"""Junk pre-prepares per (view, seq) and peer: the issue's attack filled a slot's 8 batches."""

JUNK_VIEWS = 2
"""Future views (within the bound) in which the byzantine replica is primary and sends junk."""

OVERSIZED_BYTES = 1 << 20
"""Length of the byzantine's oversized digests, roots and signatures (1 MiB)."""

OVERSIZED_VALUES = tuple(bytes([k]) * OVERSIZED_BYTES for k in range(4))
"""A few shared 1 MiB values, so the simulator itself does not run out of memory."""

Delivery = tuple[int, Message, int]
"""(destination, message, extra delay in ticks)."""


@dataclass(slots=True)
class ByzantineReplica:
    me: int
    nodes: int
    kinds: frozenset[str]
    rng: random.Random
    sign: Callable[[bytes], bytes]
    config: ReplicaConfig
    slow_delay_ticks: int
    tick_ms: int
    injected: Counter[str] = field(default_factory=Counter)
    seen: list[Message] = field(default_factory=list)
    junk_sent: set[tuple[int, int, int]] = field(default_factory=set)
    liar: ViewChangeLiar | None = None

    def __post_init__(self) -> None:
        self.liar = ViewChangeLiar(self.me, self.config, self.sign)

    @property
    def chain_id(self) -> bytes:
        return self.config.chain_id

    def _resign(self, message: Message) -> Message:
        return replace(message, signature=self.sign(signed_bytes(message, self.chain_id)))

    def observe(self, message: Message) -> None:
        if "replay_old_view" in self.kinds and len(self.seen) < 400:
            self.seen.append(message)
        if self.liar is not None:
            self.liar.learn(message)

    def outgoing(self, message: Message, destinations: list[int]) -> list[Delivery]:
        kinds = self.kinds
        if "silent_primary" in kinds:
            self.injected["silent_primary"] += 1
            return []
        if self.liar is not None and message.sender == self.me:
            self.liar.learn(message)
        out: list[Delivery] = []
        for dst in destinations:
            sent = self._lie(message, dst)
            delay = 0
            if isinstance(message, PrePrepare):
                if "equivocating_primary" in kinds and dst % 2 == 0:
                    evil = (Request(b"evil-%d" % message.seq, b"x"), *message.batch[1:])
                    digest = proposal_digest(evil, message.metadata, self.chain_id)
                    sent = self._resign(replace(message, batch=evil, digest=digest))
                    self.injected["equivocating_primary"] += 1
                if "slow_primary" in kinds:
                    delay = self.slow_delay_ticks
                    self.injected["slow_primary"] += 1
            elif (
                isinstance(message, Prepare | Commit)
                and "conflicting_votes" in kinds
                and self.rng.random() < 0.5
            ):
                sent = self._resign(replace(message, digest=self.rng.randbytes(32)))
                self.injected["conflicting_votes"] += 1
            out.append((dst, sent, delay))
        return out

    def _lie(self, message: Message, dst: int) -> Message:
        """Per-destination lies in VIEW-CHANGE, NEW-VIEW and CHECKPOINT contents."""
        liar = self.liar
        if liar is None or message.sender != self.me:
            return message
        if isinstance(message, ViewChange) and "lying_view_change" in self.kinds:
            variant = (dst + message.new_view) % 3
            if variant:
                self.injected["lying_view_change"] += 1
            return liar.lie(message, variant)
        if isinstance(message, NewView) and "equivocating_new_view" in self.kinds and dst % 2 == 0:
            self.injected["equivocating_new_view"] += 1
            return liar.other_new_view(message)
        if isinstance(message, Checkpoint) and "wrong_checkpoint_root" in self.kinds:
            self.injected["wrong_checkpoint_root"] += 1
            wrong = bytes([dst]) + self.rng.randbytes(31)
            return self._resign(replace(message, state_root=wrong))
        return message

    def on_tick(self, now: int, view: int, stable_seq: int) -> list[Delivery]:
        """Unsolicited traffic: forgeries, replays, absurd views, junk and oversized fields."""
        out: list[Delivery] = []
        if "junk_pre_prepares" in self.kinds and now % 5 == 0:
            out.extend(self._junk(now * self.tick_ms, view, stable_seq))
        if now % 7:
            return out
        dst = self.rng.choice([i for i in range(self.nodes) if i != self.me])
        if "bad_signatures" in self.kinds:
            victim = self.rng.randrange(self.nodes)
            forged = Prepare(view, self.rng.randint(1, 20), self.rng.randbytes(32), victim)
            out.append((dst, replace(forged, signature=self.rng.randbytes(16)), 0))
            self.injected["bad_signatures"] += 1
        if "replay_old_view" in self.kinds and self.seen:
            out.append((dst, self.rng.choice(self.seen), 0))
            self.injected["replay_old_view"] += 1
        if "huge_view" in self.kinds:
            huge = self.rng.choice([view + 10**9, 2**62, view + 65])
            vc = ViewChange(huge, 0, bytes(32), (), (), self.me)
            out.append((dst, self._resign(vc), 0))
            commit = Commit(huge, self.rng.randint(1, 20), self.rng.randbytes(32), self.me)
            out.append((dst, self._resign(commit), 0))
            self.injected["huge_view"] += 1
        if "oversized_fields" in self.kinds:
            out.extend((dst, m, 0) for m in self._oversized(now, view, stable_seq))
        return out

    def _junk(self, now_ms: int, view: int, stable_seq: int) -> list[Delivery]:
        """JUNK_PER_SLOT valid, signed PRE-PREPAREs for every slot of the window, in
        the next views (within the bound) in which we are primary, once per peer."""
        views = [
            v
            for v in range(view, view + self.config.view_bound + 1)
            if primary_of(v, self.nodes) == self.me
        ][:JUNK_VIEWS]
        out: list[Delivery] = []
        window = range(stable_seq + 1, stable_seq + self.config.watermark_window + 1)
        for v in views:
            for seq in window:
                for dst in range(self.nodes):
                    if dst == self.me or (dst, v, seq) in self.junk_sent:
                        continue
                    self.junk_sent.add((dst, v, seq))
                    for k in range(JUNK_PER_SLOT):
                        batch = (Request(b"junk-%d-%d-%d-%d" % (v, seq, dst, k), b"junk"),)
                        metadata = ProposalMetadata(now_ms, v)
                        digest = proposal_digest(batch, metadata, self.chain_id)
                        pp = PrePrepare(v, seq, digest, batch, metadata, self.me)
                        out.append((dst, self._resign(pp), 0))
                        self.injected["junk_pre_prepares"] += 1
        return out

    def _oversized(self, now: int, view: int, stable_seq: int) -> list[Message]:
        """Validly signed messages whose digest or root is 1 MiB, and one with a 1 MiB
        signature: an honest replica must not keep any of them."""
        big = OVERSIZED_VALUES[(now // 7) % len(OVERSIZED_VALUES)]
        seq = stable_seq + 1 + (now // 7) % self.config.watermark_window
        interval = self.config.checkpoint_interval
        boundary = (stable_seq // interval + 1 + (now // 7) % 2) * interval
        self.injected["oversized_fields"] += 4
        return [
            self._resign(Commit(view, seq, big, self.me)),
            self._resign(Prepare(view, seq, big, self.me)),
            self._resign(Checkpoint(boundary, big, self.me)),
            Commit(view, seq, bytes(32), self.me, big),
        ]
