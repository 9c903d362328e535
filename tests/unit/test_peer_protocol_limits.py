"""Peer protocol limits a byzantine member could otherwise abuse: frames per
message, and replies that outlive the connection they were for."""

from __future__ import annotations

import hashlib

from node.peer_frames import (
    DEFAULT_MAX_FRAME_BYTES,
    LENGTH_PREFIX_BYTES,
    BatchReply,
    BatchRequest,
    BlocksReply,
    BlocksRequest,
    ConsensusFrame,
    PeerFault,
    Refused,
    TxFrame,
    encode_frame,
)
from node.peer_protocol import Authenticated, ConnectionState, ProtocolFault, Role
from tests.unit.test_peer_protocol import (
    Pair,
    connection,
    drain,
    established,
    faults,
    handshake,
    last_frame_sent,
    take,
)

# --- one frame per message ------------------------------------------------------------


def test_a_message_of_many_tiny_frames_is_one_fault_and_none_of_them_is_parsed() -> None:
    # Was: every frame parsed in one call (1.86 M in a 16 MiB message), events
    # popped from the front of a list.
    pair = established()
    message = encode_frame(TxFrame(b"")) * 200_000
    assert len(message) <= DEFAULT_MAX_FRAME_BYTES + LENGTH_PREFIX_BYTES  # one WS message
    pair.listener.receive_data(message)
    events = drain(pair.listener)
    assert faults(events) == [PeerFault.UNEXPECTED_FRAME]
    assert len(events) == 1
    assert pair.listener.state is ConnectionState.CLOSED
    assert pair.listener.buffered_bytes == 0
    assert last_frame_sent(pair.listener) == Refused(PeerFault.UNEXPECTED_FRAME.value)


def test_a_frame_with_the_head_of_the_next_behind_it_is_a_fault() -> None:
    pair = established()
    pair.listener.receive_data(encode_frame(TxFrame(b"a")) + encode_frame(TxFrame(b"b"))[:3])
    assert faults(drain(pair.listener)) == [PeerFault.UNEXPECTED_FRAME]


def test_a_frame_split_over_messages_is_still_parsed() -> None:
    pair = established()
    data = pair.dialer.send(ConsensusFrame(b"x" * 100))
    pair.listener.receive_data(data[:50])
    assert drain(pair.listener) == []
    pair.listener.receive_data(data[50:])
    assert drain(pair.listener) == [ConsensusFrame(b"x" * 100)]


def test_every_frame_the_sender_produces_is_one_whole_frame() -> None:
    # The transport writes each of these as its own WebSocket message.
    pair = established()
    request_id, request = pair.dialer.request_blocks(1, 2, 1000)
    messages = [
        pair.dialer.send(ConsensusFrame(b"prepare")),
        pair.dialer.send(TxFrame(b"tx")),
        request,
        pair.dialer.request_batch(bytes(32))[1],
    ]
    for message in messages:
        pair.listener.receive_data(message)
    events = drain(pair.listener)
    assert faults(events) == []
    assert len(events) == len(messages)
    pair.dialer.receive_data(pair.listener.send(BlocksReply(request_id, 1, (b"block",))))
    assert drain(pair.dialer) == [BlocksReply(request_id, 1, (b"block",))]


def test_hello_and_auth_in_one_message_still_authenticate() -> None:
    dialer = connection(0, Role.DIALER, expected_peer=1, seed="coalesced")
    listener = connection(1, Role.LISTENER, seed="coalesced")
    hello_d = dialer.start()
    dialer.receive_data(listener.start())
    listener.receive_data(hello_d + take(dialer))  # the dialer's Hello and Auth together
    assert drain(listener) == [Authenticated(0, dialer.local.identity.public_key, bytes(16))]
    dialer.receive_data(take(listener))
    assert [type(e) for e in drain(dialer)] == [Authenticated]


def test_the_peers_auth_and_its_first_frame_in_one_message_are_both_read() -> None:
    dialer = connection(0, Role.DIALER, expected_peer=1, seed="auth+frame")
    listener = connection(1, Role.LISTENER, seed="auth+frame")
    hello_d, hello_l = dialer.start(), listener.start()
    listener.receive_data(hello_d)
    dialer.receive_data(hello_l)
    listener.receive_data(take(dialer))
    auth_l = take(listener)
    first = listener.send(ConsensusFrame(b"first"))
    dialer.receive_data(auth_l + first)
    events = drain(dialer)
    assert [type(e) for e in events] == [Authenticated, ConsensusFrame]
    assert dialer.state is ConnectionState.ESTABLISHED


# --- replies outliving their connection -------------------------------------------


def _pair(seed: str) -> Pair:
    return handshake(
        connection(0, Role.DIALER, expected_peer=1, seed=seed),
        connection(1, Role.LISTENER, seed=seed),
    )


def _owed_blocks(pair: Pair, first_height: int) -> int:
    """The dialer asks blocks from ``first_height``; the listener now owes the reply."""
    last_height = first_height + 2
    request_id, data = pair.dialer.request_blocks(first_height, last_height, 1 << 20)
    pair.listener.receive_data(data)
    assert drain(pair.listener) == [BlocksRequest(request_id, first_height, last_height, 1 << 20)]
    return request_id


def _owed_batch(pair: Pair, digest: bytes) -> int:
    request_id, data = pair.dialer.request_batch(digest)
    pair.listener.receive_data(data)
    assert drain(pair.listener) == [BatchRequest(request_id, digest)]
    return request_id


def test_a_stale_blocks_reply_for_a_reused_id_is_dropped_and_the_owed_one_still_goes() -> None:
    # Was: InvariantViolation in send(), which killed the link's writer.
    first = _pair("session-1")
    assert _owed_blocks(first, 10) == 1
    second = _pair("session-2")  # the link was replaced: ids restart at 1
    assert _owed_blocks(second, 20) == 1
    assert second.listener.send(BlocksReply(1, 10, (b"block 10",))) == b""
    # The reply this connection does owe still goes, and the requester takes it.
    second.dialer.receive_data(second.listener.send(BlocksReply(1, 20, (b"block 20",))))
    assert drain(second.dialer) == [BlocksReply(1, 20, (b"block 20",))]
    assert second.dialer.pending_requests == 0
    assert second.listener.state is second.dialer.state is ConnectionState.ESTABLISHED


def test_a_stale_reply_of_the_other_kind_is_dropped_both_ways() -> None:
    digest = hashlib.sha256(b"batch").digest()
    pair = _pair("kinds")
    blocks_id = _owed_blocks(pair, 5)
    batch_id = _owed_batch(pair, digest)
    assert pair.listener.send(BatchReply(blocks_id, digest, b"batch")) == b""
    assert pair.listener.send(BlocksReply(batch_id, 5, (b"block",))) == b""
    # Both stay owed: their own replies go and are accepted.
    pair.dialer.receive_data(pair.listener.send(BlocksReply(blocks_id, 5, (b"block",))))
    pair.dialer.receive_data(pair.listener.send(BatchReply(batch_id, digest, b"batch")))
    assert drain(pair.dialer) == [
        BlocksReply(blocks_id, 5, (b"block",)),
        BatchReply(batch_id, digest, b"batch"),
    ]


def test_a_stale_batch_reply_for_another_digest_is_dropped_not_sent_as_a_mismatch() -> None:
    # Was: sent, and the requester closed the link with MISMATCHED_REPLY.
    asked, stale = hashlib.sha256(b"asked").digest(), hashlib.sha256(b"stale").digest()
    pair = _pair("digest")
    request_id = _owed_batch(pair, asked)
    assert pair.listener.send(BatchReply(request_id, stale, b"old batch")) == b""
    pair.dialer.receive_data(pair.listener.send(BatchReply(request_id, asked, None)))
    events = drain(pair.dialer)
    assert events == [BatchReply(request_id, asked, None)]
    assert not any(isinstance(e, ProtocolFault) for e in events)
