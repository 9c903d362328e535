"""Byzantine behaviours: a real Replica whose outgoing traffic is rewritten.

The byzantine replica holds only its own signing key, so everything it sends in
its own name verifies, and anything it forges in another's name does not.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from consensus.messages import (
    Commit,
    Message,
    Prepare,
    PrePrepare,
    Request,
    ViewChange,
    proposal_digest,
    signed_bytes,
)

BYZANTINE_KINDS = (
    "equivocating_primary",
    "conflicting_votes",
    "bad_signatures",
    "replay_old_view",
    "huge_view",
    "silent_primary",
    "slow_primary",
)

Delivery = tuple[int, Message, int]
"""(destination, message, extra delay in ticks)."""


@dataclass(slots=True)
class ByzantineReplica:
    me: int
    nodes: int
    kinds: frozenset[str]
    rng: random.Random
    sign: Callable[[bytes], bytes]
    chain_id: bytes
    slow_delay_ticks: int
    injected: Counter[str] = field(default_factory=Counter)
    seen: list[Message] = field(default_factory=list)

    def _resign(self, message: Message) -> Message:
        return replace(message, signature=self.sign(signed_bytes(message, self.chain_id)))

    def observe(self, message: Message) -> None:
        if "replay_old_view" in self.kinds and len(self.seen) < 400:
            self.seen.append(message)

    def outgoing(self, message: Message, destinations: list[int]) -> list[Delivery]:
        kinds = self.kinds
        if "silent_primary" in kinds:
            self.injected["silent_primary"] += 1
            return []
        out: list[Delivery] = []
        for dst in destinations:
            sent = message
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

    def on_tick(self, now: int, view: int) -> list[Delivery]:
        """Unsolicited traffic: forgeries, replays and absurd views."""
        out: list[Delivery] = []
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
        return out
