"""State transfer in the simulator: a peer serves its history, the receiver checks it.

The receiver trusts nothing the source says: it recomputes every batch digest
and the root chain, and installs the history only if the root at the stable
checkpoint's height is the one 2f+1 replicas signed. A byzantine source
(``lying_state_source``) serves a tampered history; it must be refused and the
next peer tried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from consensus.config import GENESIS_STATE_ROOT
from consensus.messages import Batch, ProposalMetadata, Request, proposal_digest
from consensus.sim.app import SimApp, next_root


@dataclass(frozen=True, slots=True)
class ServedHistory:
    digests: tuple[bytes, ...]
    batches: tuple[Batch, ...]
    metadata: tuple[ProposalMetadata, ...]


def serve(app: SimApp, seq: int) -> ServedHistory:
    return ServedHistory(
        tuple(app.digests[:seq]), tuple(app.batches[:seq]), tuple(app.metadata[:seq])
    )


def serve_lie(app: SimApp, seq: int, rng: random.Random, chain_id: bytes) -> ServedHistory:
    """A tampered prefix: one batch altered under its old digest, or one batch and
    its digest replaced consistently (so only the root chain shows the lie)."""
    honest = serve(app, seq)
    digests, batches = list(honest.digests), list(honest.batches)
    height = rng.randrange(seq)
    forged: Batch = (Request(b"forged-%d" % height, b"lie"), *batches[height][1:])
    batches[height] = forged
    if rng.random() < 0.5:
        digests[height] = proposal_digest(forged, honest.metadata[height], chain_id)
    return ServedHistory(tuple(digests), tuple(batches), honest.metadata)


def history_problem(
    served: ServedHistory, seq: int, stable_root: bytes, chain_id: bytes
) -> str | None:
    """Why ``served`` is not the history up to ``seq`` ending at ``stable_root``."""
    if not len(served.digests) == len(served.batches) == len(served.metadata) == seq:
        return "wrong length"
    root = GENESIS_STATE_ROOT
    for digest, batch, metadata in zip(
        served.digests, served.batches, served.metadata, strict=True
    ):
        if proposal_digest(batch, metadata, chain_id) != digest:
            return "a batch does not match its digest"
        root = next_root(root, digest)
    if root != stable_root:
        return "root differs from the stable checkpoint"
    return None
