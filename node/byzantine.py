"""A test-only attacker: the honest core's outgoing messages, rewritten before they leave.

``veil node run --byzantine KINDS`` wraps the runtime's ``PeerLinks`` in
``ByzantineLinks``; the consensus core itself stays honest and unaware. Refused
unless ``VEIL_BYZANTINE_TEST=1`` says this is a test (``byzantine_kinds``).

Kinds (issue 12):

- ``equivocate``: each of our PRE-PREPAREs goes to every peer with a different
  proposal timestamp (so a different digest, each validly signed), and the
  lowest peer gets the real one too: no digest can gather a prepare quorum, and
  that peer sees two PRE-PREPAREs for one slot;
- ``conflicting-votes``: every PREPARE and COMMIT is followed by a second one,
  same slot, a random digest, validly signed;
- ``junk``: with each PRE-PREPARE, up to ``JUNK_PER_SLOT`` signed junk batches
  for the next slots of the watermark window (each slot once, different per
  peer), ``JUNK_REQUESTS`` requests of ``JUNK_REQUEST_BYTES`` random bytes each:
  within every bound the core enforces;
- ``censor``: our proposals leave out every tx signed by ``censored_signer``
  (re-signed, so they verify); the others are proposed as usual.

The wrapper counts what it injected (``injected``), logged at exit for the tests.

One kind is not in ``all``, since it is about serving rather than speaking:
``mute-catchup`` never answers a peer's ``BlocksRequest`` (the node's
``peer_bridge.pump`` is told not to serve), so a peer catching up from it waits
out its fetch timeout.
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from consensus.config import ReplicaConfig
from consensus.messages import (
    Batch,
    Commit,
    Message,
    Prepare,
    PrePrepare,
    ProposalMetadata,
    Request,
    proposal_digest,
    signed_bytes,
)
from ledger.reasons import TxRejected
from ledger.tx import decode_tx
from node.runtime import PeerLinks

M = TypeVar("M", bound=Message)

log = logging.getLogger("veil.node.byzantine")

TEST_ENV_VAR = "VEIL_BYZANTINE_TEST"
KINDS = ("equivocate", "conflicting-votes", "junk", "censor")
"""What ``all`` means: the attacks on consensus messages."""
MUTE_CATCHUP = "mute-catchup"
KNOWN_KINDS = (*KINDS, MUTE_CATCHUP)
JUNK_PER_SLOT = 4
JUNK_REQUESTS = 8
JUNK_REQUEST_BYTES = 256
MAX_TX_BYTES = 1 << 20


class ByzantineRefusedError(ValueError):
    """The byzantine option without the test confirmation, or an unknown kind."""


def byzantine_kinds(option: str, environ: dict[str, str] | None = None) -> frozenset[str]:
    """``option`` ("all" or kinds separated by commas), checked; refused outside a test."""
    env = os.environ if environ is None else environ
    if env.get(TEST_ENV_VAR) != "1":
        raise ByzantineRefusedError(
            f"--byzantine is a test-only attacker; refused unless {TEST_ENV_VAR}=1 is set"
        )
    chosen = set(KINDS) if option == "all" else {k.strip() for k in option.split(",") if k}
    unknown = sorted(chosen - set(KNOWN_KINDS))
    if unknown or not chosen:
        raise ByzantineRefusedError(
            f"--byzantine: unknown kind {unknown[:1]}; known: {list(KNOWN_KINDS)}"
        )
    return frozenset(chosen)


@dataclass(slots=True)
class ByzantineLinks:
    """``PeerLinks`` that lie; everything not rewritten passes to ``inner`` unchanged."""

    inner: PeerLinks
    kinds: frozenset[str]
    config: ReplicaConfig
    sign: Callable[[bytes], bytes]
    censored_signer: bytes
    rng: random.Random
    injected: Counter[str]
    junk_sent_to_seq: int = 0

    @property
    def me(self) -> int:
        return self.config.replica_id

    def _peers(self) -> list[int]:
        return [i for i in range(self.config.replica_count) if i != self.me]

    def _resign(self, message: M) -> M:
        return replace(message, signature=self.sign(signed_bytes(message, self.config.chain_id)))

    def _proposal(self, pp: PrePrepare, batch: Batch, metadata: ProposalMetadata) -> PrePrepare:
        digest = proposal_digest(batch, metadata, self.config.chain_id)
        return self._resign(replace(pp, batch=batch, metadata=metadata, digest=digest))

    # --- PeerLinks ---------------------------------------------------------------

    def send(self, to: int, message: Message) -> None:
        for destination, out in self._rewrite(message, [to]):
            self.inner.send(destination, out)

    def broadcast(self, message: Message) -> None:
        for destination, out in self._rewrite(message, self._peers()):
            self.inner.send(destination, out)

    def gossip_tx(self, tx_bytes: bytes) -> None:
        self.inner.gossip_tx(tx_bytes)

    def connected(self, peer: int) -> bool:
        return self.inner.connected(peer)

    def quarantine(self, peer: int, reason: str) -> None:
        self.inner.quarantine(peer, reason)

    async def fetch_blocks(
        self, peer: int, first_height: int, last_height: int, max_bytes: int
    ) -> list[bytes]:
        return await self.inner.fetch_blocks(peer, first_height, last_height, max_bytes)

    # --- the lies ------------------------------------------------------------------

    def _rewrite(self, message: Message, destinations: list[int]) -> list[tuple[int, Message]]:
        if message.sender != self.me:
            return [(d, message) for d in destinations]
        if isinstance(message, PrePrepare):
            return self._pre_prepare(message, destinations)
        if isinstance(message, Prepare | Commit) and "conflicting-votes" in self.kinds:
            out: list[tuple[int, Message]] = []
            for destination in destinations:
                conflicting = self._resign(replace(message, digest=self.rng.randbytes(32)))
                out += [(destination, message), (destination, conflicting)]
                self.injected["conflicting-votes"] += 1
            return out
        return [(d, message) for d in destinations]

    def _pre_prepare(self, pp: PrePrepare, destinations: list[int]) -> list[tuple[int, Message]]:
        honest = pp
        if "censor" in self.kinds:
            kept = tuple(r for r in pp.batch if not self._censored(r))
            if len(kept) != len(pp.batch):
                self.injected["censor"] += len(pp.batch) - len(kept)
                honest = self._proposal(pp, kept, pp.metadata)
        out: list[tuple[int, Message]] = []
        for destination in destinations:
            if "equivocate" in self.kinds:
                # A different timestamp per peer: a different digest, every one valid.
                stamp_ms = honest.metadata.timestamp_ms + destination + 1
                shifted = replace(honest.metadata, timestamp_ms=stamp_ms)
                out.append((destination, self._proposal(honest, honest.batch, shifted)))
                self.injected["equivocate"] += 1
                if destination == min(destinations):
                    out.append((destination, honest))
            else:
                out.append((destination, honest))
        if "junk" in self.kinds:
            out += self._junk(pp, destinations)
        return out

    def _censored(self, request: Request) -> bool:
        try:
            decoded = decode_tx(request.payload, self.config.chain_id, max_tx_bytes=MAX_TX_BYTES)
        except TxRejected:
            return False
        return decoded.signer == self.censored_signer

    def _junk(self, pp: PrePrepare, destinations: list[int]) -> list[tuple[int, Message]]:
        """Junk batches for the slots after ``pp`` in its window, each slot once."""
        first = max(pp.seq + 1, self.junk_sent_to_seq + 1)
        last = pp.seq + self.config.watermark_window // 2
        out: list[tuple[int, Message]] = []
        for seq in range(first, last + 1):
            for destination in destinations:
                for _ in range(JUNK_PER_SLOT):
                    batch = tuple(
                        Request(self.rng.randbytes(32), self.rng.randbytes(JUNK_REQUEST_BYTES))
                        for _ in range(JUNK_REQUESTS)
                    )
                    junk = replace(pp, seq=seq)
                    out.append((destination, self._proposal(junk, batch, pp.metadata)))
                    self.injected["junk"] += 1
        self.junk_sent_to_seq = max(self.junk_sent_to_seq, last)
        return out

    def report(self) -> None:
        log.warning("byzantine test node injected: %s", dict(self.injected))
