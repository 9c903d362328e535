"""Peer faults never raise out of step(): random, mostly invalid traffic from peers."""

from __future__ import annotations

import random
from dataclasses import replace

from consensus.events import MessageReceived, RequestSubmitted, Tick
from consensus.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Request,
    ViewChange,
    signed_bytes,
)
from consensus.sim.fixtures import TEST_CHAIN_ID, digest_of, make_replica, metadata_of
from consensus.sim.keys import signer


def random_message(rng: random.Random) -> Message:
    view = rng.choice([0, 1, 2, 3, 17, 2**40])
    seq = rng.choice([0, 1, 2, 4, 5, 8, 9, 2**33])
    sender = rng.choice([0, 1, 2, 3, 3, 4, 99])
    batch = tuple(Request(b"r%d" % rng.randrange(6), b"p") for _ in range(rng.randrange(3)))
    digest = digest_of(batch, view) if rng.random() < 0.7 else rng.randbytes(32)
    kind = rng.randrange(6)
    message: Message
    if kind == 0:
        message = PrePrepare(view, seq, digest, batch, metadata_of(view), sender)
    elif kind == 1:
        message = Prepare(view, seq, digest, sender)
    elif kind == 2:
        message = Commit(view, seq, digest, sender)
    elif kind == 3:
        message = Checkpoint(seq, rng.choice([bytes(32), b"r" * 32]), sender)
    elif kind == 4:
        pp = PrePrepare(view, seq, digest, batch, metadata_of(view), view % 4)
        cert = PreparedCertificate(
            pp, (Prepare(view, seq, digest, 1), Prepare(view, seq, digest, 2))
        )
        message = ViewChange(view, 0, bytes(32), (), (cert,) * rng.randrange(2), sender)
    else:
        vc = ViewChange(view, 0, bytes(32), (), (), rng.randrange(4))
        message = NewView(view, (vc,) * rng.randrange(4), (), sender)
    if 0 <= message.sender < 4 and rng.random() < 0.8:
        signature = signer(message.sender)(signed_bytes(message, TEST_CHAIN_ID))
        return replace(message, signature=signature)
    return message


def test_random_peer_traffic_never_raises() -> None:
    rng = random.Random(4)
    for replica_id in range(4):
        replica = make_replica(replica_id)
        replica.step(RequestSubmitted(Request(b"r1", b"p")))
        for i in range(3000):
            message = random_message(rng)
            replica.step(MessageReceived(rng.randrange(4), message))
            if i % 7 == 0:
                replica.step(Tick(0))
        assert sum(replica.fault_counts.values()) > 0
