"""Issue 8 §1.5: digests, roots and signatures have fixed lengths.

``shape.py`` checked that they were bytes, not how many: a byzantine validator
could sign COMMITs with 1 MiB digests, and one replica kept 128 MiB of them.
Now the replica drops such a message as ``malformed`` before it checks the
signature or stores anything, and ``wire.py`` refuses the bytes.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus.config import ReplicaConfig
from consensus.events import MessageReceived
from consensus.messages import Checkpoint, Commit, Message, Request
from consensus.shape import DIGEST_BYTES, shape_problem
from consensus.sim.fixtures import (
    checkpoint,
    make_config,
    make_replica,
    pre_prepare,
    prepare,
    request,
    signed,
)
from consensus.sim.keys import SIGNATURE_BYTES, public_key
from consensus.wire import WireError, decode_message, encode_message

MIB = 1 << 20


def test_signed_commits_with_huge_digests_are_not_retained() -> None:
    replica = make_replica(1)
    for seq in range(1, 9):
        for view in range(16):
            huge = signed(Commit(view, seq, bytes([view]) * MIB, 2))
            replica.step(MessageReceived(2, huge))
    assert replica.fault_counts["malformed"] == 128
    assert all(not slot.commits for slot in replica.log.slots.values())


@pytest.mark.parametrize(
    "message",
    [
        replace(prepare(0, 1, (request(1),), 2), digest=bytes(33)),
        replace(prepare(0, 1, (request(1),), 2), digest=bytes(31)),
        replace(pre_prepare(0, 1, (request(1),)), digest=b""),
        replace(checkpoint(4, bytes(32), 2), state_root=bytes(64)),
        replace(prepare(0, 1, (request(1),), 2), signature=bytes(SIGNATURE_BYTES + 1)),
        replace(checkpoint(4, bytes(32), 2), signature=b""),
        pre_prepare(0, 1, (Request(b"", b"p"),)),
        pre_prepare(0, 1, (Request(bytes(65), b"p"),)),
    ],
)
def test_wrong_lengths_are_malformed(message: Message) -> None:
    replica = make_replica(1)
    replica.step(MessageReceived(2, message))
    assert replica.fault_counts["malformed"] == 1
    assert not replica.log.slots


def test_the_signature_length_comes_from_the_config() -> None:
    ok = checkpoint(4, bytes(32), 2)
    assert shape_problem(ok, signature_bytes=SIGNATURE_BYTES) is None
    assert shape_problem(ok, signature_bytes=64) == "a signature is not 64 bytes"
    assert make_config(1).signature_bytes == SIGNATURE_BYTES
    default = ReplicaConfig(b"c", tuple(public_key(i) for i in range(4)), 0)
    assert default.signature_bytes == 64  # ed25519


def test_config_refuses_a_genesis_root_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="genesis_state_root"):
        make_config(1, genesis_state_root=bytes(31))


@pytest.mark.parametrize(
    "message",
    [
        replace(prepare(0, 1, (request(1),), 2), digest=bytes(MIB)),
        replace(checkpoint(4, bytes(32), 2), state_root=bytes(33)),
        replace(prepare(0, 1, (request(1),), 2), signature=bytes(65)),
        pre_prepare(0, 1, (Request(bytes(65), b"p"),)),
    ],
)
def test_the_wire_refuses_wrong_lengths(message: Message) -> None:
    with pytest.raises(WireError, match="bytes"):
        decode_message(encode_message(message))


def test_the_wire_still_takes_right_lengths() -> None:
    message = Checkpoint(4, bytes(DIGEST_BYTES), 2, bytes(64))
    assert decode_message(encode_message(message)) == message
