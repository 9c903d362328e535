"""The sans-I/O peer protocol, driven step by step like ``Replica``.

Every refusal has its own case in ``REFUSALS``; a meta-test demands a case for
each fault the protocol itself can raise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from consensus.invariants import InvariantViolation
from ledger.codec import encode_value
from ledger.identity import SigningIdentity
from node.peer_frames import (
    DEFAULT_MAX_FRAME_BYTES,
    MAX_HANDSHAKE_FRAME_BYTES,
    Auth,
    BatchReply,
    BatchRequest,
    BlocksReply,
    BlocksRequest,
    ConsensusFrame,
    FrameKind,
    Hello,
    PeerFault,
    Refused,
    TxFrame,
    decode_frame_body,
    encode_frame,
)
from node.peer_protocol import (
    MAX_PENDING_REQUESTS,
    PLAIN_CHANNEL_BINDING,
    PROTOCOL_VERSION,
    Authenticated,
    Connection,
    ConnectionState,
    Event,
    LocalPeer,
    NonceMemory,
    ProtocolFault,
    RemoteRefused,
    Role,
    tls_channel_binding,
)

CHAIN = hashlib.sha256(b"test chain").digest()
OTHER_CHAIN = hashlib.sha256(b"another chain").digest()
IDS = [SigningIdentity.from_seed(bytes([i + 1]) * 32) for i in range(5)]
VALIDATORS = tuple(identity.public_key for identity in IDS[:4])
OUTSIDER = IDS[4]
BINDING = tls_channel_binding(b"dialer certificate", b"listener certificate")


def nonce(tag: str) -> bytes:
    return hashlib.sha256(tag.encode()).digest()


def local(
    index: int, *, chain: bytes = CHAIN, validators: tuple[bytes, ...] = VALIDATORS
) -> LocalPeer:
    return LocalPeer(IDS[index], chain, validators, bytes([index]) * 16)


def connection(
    index: int,
    role: Role,
    *,
    chain: bytes = CHAIN,
    validators: tuple[bytes, ...] = VALIDATORS,
    binding: bytes = BINDING,
    tls: bool = True,
    expected_peer: int | None = None,
    memory: NonceMemory | None = None,
    seed: str = "",
) -> Connection:
    return Connection(
        local(index, chain=chain, validators=validators),
        role=role,
        nonce=nonce(f"{index}/{role.value}/{seed}"),
        channel_binding=binding,
        tls=tls,
        expected_peer=expected_peer,
        nonce_memory=memory,
    )


def drain(conn: Connection) -> list[Event]:
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


@dataclass
class Pair:
    dialer: Connection
    listener: Connection
    dialer_events: list[Event]
    listener_events: list[Event]


def handshake(dialer: Connection, listener: Connection) -> Pair:
    """Run the handshake the way the transport does: both Hellos, then the Auths."""
    hello_d, hello_l = dialer.start(), listener.start()
    listener.receive_data(hello_d)
    dialer.receive_data(hello_l)
    listener.receive_data(take(dialer))
    dialer.receive_data(take(listener))
    return Pair(dialer, listener, drain(dialer), drain(listener))


def established() -> Pair:
    pair = handshake(connection(0, Role.DIALER, expected_peer=1), connection(1, Role.LISTENER))
    assert pair.dialer.state is pair.listener.state is ConnectionState.ESTABLISHED
    return pair


def faults(events: list[Event]) -> list[PeerFault]:
    return [e.fault for e in events if isinstance(e, ProtocolFault)]


SENT: dict[int, bytearray] = {}


def take(conn: Connection) -> bytes:
    """``conn.data_to_send()``, also kept so a test can read what a side sent."""
    data = conn.data_to_send()
    SENT.setdefault(id(conn), bytearray()).extend(data)
    return data


def last_frame_sent(conn: Connection) -> object:
    data = SENT.setdefault(id(conn), bytearray()) + take(conn)
    frame: object = None
    while data:
        length = int.from_bytes(data[:4], "big")
        frame = decode_frame_body(bytes(data[4 : 4 + length]), max_bytes=length)
        del data[: 4 + length]
    return frame


# --- the happy path ---------------------------------------------------------------


def test_handshake_authenticates_both_sides_and_frames_flow() -> None:
    pair = established()
    assert pair.dialer_events == [Authenticated(1, VALIDATORS[1], bytes([1]) * 16)]
    assert pair.listener_events == [Authenticated(0, VALIDATORS[0], bytes([0]) * 16)]
    pair.listener.receive_data(pair.dialer.send(ConsensusFrame(b"prepare")))
    pair.dialer.receive_data(pair.listener.send(TxFrame(b"tx bytes")))
    assert drain(pair.listener) == [ConsensusFrame(b"prepare")]
    assert drain(pair.dialer) == [TxFrame(b"tx bytes")]


def test_frames_split_at_every_byte_parse_whole() -> None:
    pair = established()
    data = pair.dialer.send(ConsensusFrame(b"a" * 300)) + pair.dialer.send(TxFrame(b"b"))
    for byte in data:  # one byte per message: no message holds two frames
        pair.listener.receive_data(bytes([byte]))
    assert drain(pair.listener) == [ConsensusFrame(b"a" * 300), TxFrame(b"b")]
    assert pair.listener.buffered_bytes == 0


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    pair = established()
    pair.listener.max_frame_bytes = len(pair.dialer.send(TxFrame(b"x" * 1000))) - 4
    pair.listener.receive_data(pair.dialer.send(TxFrame(b"x" * 1000)))
    assert drain(pair.listener) == [TxFrame(b"x" * 1000)]


def test_batch_fetch_by_digest_round_trip() -> None:
    pair = established()
    digest = hashlib.sha256(b"batch").digest()
    request_id, data = pair.dialer.request_batch(digest)
    pair.listener.receive_data(data)
    assert drain(pair.listener) == [BatchRequest(request_id, digest)]
    pair.dialer.receive_data(pair.listener.send(BatchReply(request_id, digest, b"the batch")))
    assert drain(pair.dialer) == [BatchReply(request_id, digest, b"the batch")]
    assert pair.dialer.pending_requests == 0


def test_blocks_reply_is_cut_to_the_asked_count_and_bytes() -> None:
    pair = established()
    request_id, data = pair.dialer.request_blocks(5, 7, max_bytes=250)
    pair.listener.receive_data(data)
    assert drain(pair.listener) == [BlocksRequest(request_id, 5, 7, 250)]
    offered = BlocksReply(request_id, 5, (b"a" * 100, b"b" * 100, b"c" * 100, b"d"))
    pair.dialer.receive_data(pair.listener.send(offered))
    assert drain(pair.dialer) == [BlocksReply(request_id, 5, (b"a" * 100, b"b" * 100))]


def test_blocks_request_bound_is_capped_to_half_a_frame() -> None:
    pair = established()
    request_id, data = pair.dialer.request_blocks(1, 10, max_bytes=1 << 40)
    pair.listener.receive_data(data)
    assert drain(pair.listener) == [BlocksRequest(request_id, 1, 10, DEFAULT_MAX_FRAME_BYTES // 2)]


def test_a_reply_the_connection_no_longer_owes_is_dropped_not_sent() -> None:
    pair = established()
    assert pair.listener.send(BatchReply(99, bytes(32), None)) == b""


def test_sending_before_the_handshake_is_a_local_bug() -> None:
    conn = connection(0, Role.DIALER)
    conn.start()
    with pytest.raises(InvariantViolation):
        conn.send(ConsensusFrame(b"x"))


def test_requests_are_not_sent_through_send() -> None:
    pair = established()
    with pytest.raises(InvariantViolation):
        pair.dialer.send(BatchRequest(1, bytes(32)))


def test_our_own_key_must_be_a_validator() -> None:
    with pytest.raises(ValueError, match="validator set"):
        LocalPeer(OUTSIDER, CHAIN, VALIDATORS, bytes(16))


def test_plain_links_authenticate_with_the_plain_binding() -> None:
    pair = handshake(
        connection(2, Role.DIALER, binding=PLAIN_CHANNEL_BINDING, tls=False),
        connection(3, Role.LISTENER, binding=PLAIN_CHANNEL_BINDING, tls=False),
    )
    assert [type(e) for e in pair.dialer_events + pair.listener_events] == [Authenticated] * 2


def test_tls_binding_depends_on_both_certificates_and_their_roles() -> None:
    a, b, m = b"cert A", b"cert B", b"cert M"
    assert tls_channel_binding(a, b) != tls_channel_binding(b, a)
    # A relay M: A sees (A, M), B sees (M, B); they never agree.
    assert tls_channel_binding(a, m) != tls_channel_binding(m, b)


def test_nonce_memory_forgets_the_oldest_beyond_capacity() -> None:
    memory = NonceMemory(capacity=2)
    for n in (b"1", b"2", b"3"):
        memory.remember(n)
    assert b"1" not in memory and b"2" in memory and b"3" in memory


# --- refusals: one scenario per fault -------------------------------------------------


def hello_from(
    identity: SigningIdentity,
    *,
    chain: bytes = CHAIN,
    version: int = PROTOCOL_VERSION,
    tls: bool = True,
    peer_nonce: bytes = nonce("attacker"),
) -> bytes:
    return encode_frame(Hello(version, chain, identity.public_key, peer_nonce, bytes(16), tls))


def refused_hello(**kwargs: object) -> tuple[Connection, list[Event]]:
    victim = connection(0, Role.LISTENER)
    victim.start()
    identity = kwargs.pop("identity", IDS[1])
    victim.receive_data(hello_from(identity, **kwargs))  # type: ignore[arg-type]
    return victim, drain(victim)


def case_non_member() -> tuple[Connection, list[Event]]:
    # The outsider believes it is a validator; the victim's genesis says otherwise.
    attacker = Connection(
        LocalPeer(OUTSIDER, CHAIN, (*VALIDATORS, OUTSIDER.public_key), bytes(16)),
        role=Role.DIALER,
        nonce=nonce("outsider"),
        channel_binding=BINDING,
        tls=True,
    )
    pair = handshake(attacker, connection(1, Role.LISTENER))
    return pair.listener, pair.listener_events


def case_wrong_chain() -> tuple[Connection, list[Event]]:
    pair = handshake(connection(2, Role.DIALER, chain=OTHER_CHAIN), connection(1, Role.LISTENER))
    return pair.listener, pair.listener_events


def case_bad_signature() -> tuple[Connection, list[Event]]:
    victim = connection(0, Role.LISTENER)
    victim.start()
    victim.receive_data(hello_from(IDS[1]))
    victim.receive_data(encode_frame(Auth(bytes(64))))
    return victim, drain(victim)


def case_replayed_handshake() -> tuple[Connection, list[Event]]:
    """A recorded Hello and Auth of an earlier session, replayed to a new one."""
    old_dialer = connection(1, Role.DIALER, seed="old")
    old_listener = connection(0, Role.LISTENER, seed="old")
    recorded = old_dialer.start()
    old_dialer.receive_data(old_listener.start())
    recorded += old_dialer.data_to_send()  # its Auth, valid for the old session only
    victim = connection(0, Role.LISTENER, seed="new")
    victim.start()
    victim.receive_data(recorded)
    return victim, drain(victim)


def case_replayed_nonce() -> tuple[Connection, list[Event]]:
    memory = NonceMemory()
    first = connection(0, Role.LISTENER, memory=memory, seed="first")
    first.start()
    first.receive_data(hello_from(IDS[1], peer_nonce=nonce("reused")))
    assert faults(drain(first)) == []
    second = connection(0, Role.LISTENER, memory=memory, seed="second")
    second.start()
    second.receive_data(hello_from(IDS[1], peer_nonce=nonce("reused")))
    return second, drain(second)


def case_reflected_nonce() -> tuple[Connection, list[Event]]:
    victim = connection(0, Role.LISTENER)
    victim.start()
    victim.receive_data(hello_from(IDS[1], peer_nonce=nonce("0/listener/")))
    return victim, drain(victim)


def case_relayed_session() -> tuple[Connection, list[Event]]:
    """A relay terminates TLS on both sides: each end computes another binding."""
    dialer = connection(0, Role.DIALER, binding=tls_channel_binding(b"cert A", b"cert M"))
    listener = connection(1, Role.LISTENER, binding=tls_channel_binding(b"cert M", b"cert B"))
    pair = handshake(dialer, listener)
    assert faults(pair.dialer_events) == [PeerFault.BAD_SIGNATURE]
    return listener, pair.listener_events


def case_version() -> tuple[Connection, list[Event]]:
    return refused_hello(version=PROTOCOL_VERSION + 1)


def case_link_mismatch() -> tuple[Connection, list[Event]]:
    return refused_hello(tls=False)


def case_self_connection() -> tuple[Connection, list[Event]]:
    return refused_hello(identity=IDS[0])


def case_unexpected_peer() -> tuple[Connection, list[Event]]:
    pair = handshake(connection(0, Role.DIALER, expected_peer=2), connection(1, Role.LISTENER))
    return pair.dialer, pair.dialer_events


def case_oversize_before_handshake() -> tuple[Connection, list[Event]]:
    victim = connection(0, Role.LISTENER)
    victim.start()
    victim.receive_data((MAX_HANDSHAKE_FRAME_BYTES + 1).to_bytes(4, "big"))
    return victim, drain(victim)


def case_oversize_after_handshake() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data((DEFAULT_MAX_FRAME_BYTES + 1).to_bytes(4, "big") + b"x")
    return pair.listener, drain(pair.listener)


def raw(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def case_garbage_frame() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data(raw(b"\xc1\xff\x00garbage"))
    return pair.listener, drain(pair.listener)


def case_non_canonical_frame() -> tuple[Connection, list[Event]]:
    pair = established()
    # kind 10 as a 2-byte uint8 encoding (0xcc 0x0a): valid msgpack, not canonical.
    pair.listener.receive_data(raw(b"\x92\xcc\x0a\x91\xc4\x01x"))
    return pair.listener, drain(pair.listener)


def case_wrong_fields() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data(raw(encode_value((int(FrameKind.BATCH_REQUEST), (1, b"short")))))
    return pair.listener, drain(pair.listener)


def case_unknown_kind() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data(raw(encode_value((99, (b"x",)))))
    return pair.listener, drain(pair.listener)


def case_consensus_before_handshake() -> tuple[Connection, list[Event]]:
    victim = connection(0, Role.LISTENER)
    victim.start()
    victim.receive_data(encode_frame(ConsensusFrame(b"pre-prepare")))
    return victim, drain(victim)


def case_consensus_between_hello_and_auth() -> tuple[Connection, list[Event]]:
    victim = connection(0, Role.LISTENER)
    victim.start()
    victim.receive_data(hello_from(IDS[1]) + encode_frame(ConsensusFrame(b"pre-prepare")))
    return victim, drain(victim)


def case_auth_before_hello() -> tuple[Connection, list[Event]]:
    victim = connection(0, Role.LISTENER)
    victim.start()
    victim.receive_data(encode_frame(Auth(bytes(64))))
    return victim, drain(victim)


def case_second_hello() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data(hello_from(IDS[0], peer_nonce=nonce("again")))
    return pair.listener, drain(pair.listener)


def case_unsolicited_reply() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.dialer.receive_data(encode_frame(BatchReply(7, bytes(32), b"batch")))
    return pair.dialer, drain(pair.dialer)


def case_mismatched_batch_reply() -> tuple[Connection, list[Event]]:
    pair = established()
    request_id, _ = pair.dialer.request_batch(bytes(32))
    pair.dialer.receive_data(encode_frame(BatchReply(request_id, b"\x01" * 32, b"other batch")))
    return pair.dialer, drain(pair.dialer)


def case_blocks_reply_over_bytes() -> tuple[Connection, list[Event]]:
    pair = established()
    request_id, _ = pair.dialer.request_blocks(1, 5, max_bytes=100)
    pair.dialer.receive_data(encode_frame(BlocksReply(request_id, 1, (b"a" * 60, b"b" * 60))))
    return pair.dialer, drain(pair.dialer)


def case_blocks_reply_over_count() -> tuple[Connection, list[Event]]:
    pair = established()
    request_id, _ = pair.dialer.request_blocks(1, 2, max_bytes=1000)
    pair.dialer.receive_data(encode_frame(BlocksReply(request_id, 1, (b"a", b"b", b"c"))))
    return pair.dialer, drain(pair.dialer)


def case_blocks_reply_wrong_start() -> tuple[Connection, list[Event]]:
    pair = established()
    request_id, _ = pair.dialer.request_blocks(3, 4, max_bytes=1000)
    pair.dialer.receive_data(encode_frame(BlocksReply(request_id, 2, (b"a",))))
    return pair.dialer, drain(pair.dialer)


def case_inverted_block_range() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data(encode_frame(BlocksRequest(1, 9, 3, 100)))
    return pair.listener, drain(pair.listener)


def case_request_flood() -> tuple[Connection, list[Event]]:
    pair = established()
    for i in range(MAX_PENDING_REQUESTS + 1):
        pair.listener.receive_data(encode_frame(BatchRequest(i, bytes(32))))
    events = drain(pair.listener)
    assert len(events) == MAX_PENDING_REQUESTS + 1
    return pair.listener, events[-1:]


def case_duplicate_request_id() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data(encode_frame(BlocksRequest(4, 1, 2, 100)))
    pair.listener.receive_data(encode_frame(BatchRequest(4, bytes(32))))
    events = drain(pair.listener)
    assert events[0] == BlocksRequest(4, 1, 2, 100)
    return pair.listener, events[1:]


def case_two_frames_in_one_message() -> tuple[Connection, list[Event]]:
    pair = established()
    pair.listener.receive_data(encode_frame(TxFrame(b"a")) + encode_frame(TxFrame(b"b")))
    return pair.listener, drain(pair.listener)


Scenario = Callable[[], tuple[Connection, list[Event]]]
REFUSALS: list[tuple[str, Scenario, PeerFault]] = [
    ("non-member", case_non_member, PeerFault.NOT_MEMBER),
    ("member with a wrong chain id", case_wrong_chain, PeerFault.WRONG_CHAIN),
    ("bad signature", case_bad_signature, PeerFault.BAD_SIGNATURE),
    ("replayed handshake", case_replayed_handshake, PeerFault.BAD_SIGNATURE),
    ("replayed nonce", case_replayed_nonce, PeerFault.REPLAYED_NONCE),
    ("our own nonce reflected", case_reflected_nonce, PeerFault.REPLAYED_NONCE),
    ("relayed session, other binding", case_relayed_session, PeerFault.BAD_SIGNATURE),
    ("other protocol version", case_version, PeerFault.VERSION_MISMATCH),
    ("plain peer on a TLS link", case_link_mismatch, PeerFault.LINK_MISMATCH),
    ("our own key", case_self_connection, PeerFault.SELF_CONNECTION),
    ("not the validator we dialed", case_unexpected_peer, PeerFault.UNEXPECTED_PEER),
    ("oversize before handshake", case_oversize_before_handshake, PeerFault.OVERSIZE_FRAME),
    ("oversize after handshake", case_oversize_after_handshake, PeerFault.OVERSIZE_FRAME),
    ("garbage frame", case_garbage_frame, PeerFault.MALFORMED_FRAME),
    ("non-canonical frame", case_non_canonical_frame, PeerFault.MALFORMED_FRAME),
    ("wrong field lengths", case_wrong_fields, PeerFault.MALFORMED_FRAME),
    ("inverted block range", case_inverted_block_range, PeerFault.MALFORMED_FRAME),
    ("unknown frame kind", case_unknown_kind, PeerFault.UNKNOWN_FRAME_KIND),
    (
        "consensus before handshake",
        case_consensus_before_handshake,
        PeerFault.FRAME_BEFORE_HANDSHAKE,
    ),
    (
        "consensus before Auth",
        case_consensus_between_hello_and_auth,
        PeerFault.FRAME_BEFORE_HANDSHAKE,
    ),
    ("Auth before Hello", case_auth_before_hello, PeerFault.UNEXPECTED_FRAME),
    ("a second Hello", case_second_hello, PeerFault.UNEXPECTED_FRAME),
    ("two frames in one message", case_two_frames_in_one_message, PeerFault.UNEXPECTED_FRAME),
    ("unsolicited reply", case_unsolicited_reply, PeerFault.UNSOLICITED_REPLY),
    ("batch reply, other digest", case_mismatched_batch_reply, PeerFault.MISMATCHED_REPLY),
    ("blocks reply, other start", case_blocks_reply_wrong_start, PeerFault.MISMATCHED_REPLY),
    ("blocks reply over bytes", case_blocks_reply_over_bytes, PeerFault.REPLY_OVER_BOUND),
    ("blocks reply over count", case_blocks_reply_over_count, PeerFault.REPLY_OVER_BOUND),
    ("request flood", case_request_flood, PeerFault.TOO_MANY_REQUESTS),
    ("request id still pending", case_duplicate_request_id, PeerFault.DUPLICATE_REQUEST),
]
SHELL_FAULTS = {
    PeerFault.HANDSHAKE_TIMEOUT,
    PeerFault.TLS_FAILED,
    PeerFault.TOO_MANY_HANDSHAKES,
    PeerFault.CONNECTION_LOST,
    PeerFault.REFUSED_BY_PEER,
    PeerFault.QUARANTINED,
}


@pytest.mark.parametrize(("name", "scenario", "fault"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal(name: str, scenario: Scenario, fault: PeerFault) -> None:
    conn, events = scenario()
    last = events[-1]
    assert isinstance(last, ProtocolFault) and last.fault is fault, last
    assert conn.state is ConnectionState.CLOSED
    assert not any(isinstance(e, (Authenticated, ConsensusFrame)) for e in events)
    assert last_frame_sent(conn) == Refused(fault.value)
    # A closed connection ignores everything after the fault.
    conn.receive_data(encode_frame(ConsensusFrame(b"late")))
    assert drain(conn) == [] and take(conn) == b""


def test_a_pending_request_id_sent_again_is_a_peer_fault_not_an_overwrite() -> None:
    # The second request used to replace the first: answering the first then broke
    # send()'s invariant, which killed the transport's writer for that peer.
    pair = established()
    listener = pair.listener
    listener.receive_data(encode_frame(BlocksRequest(4, 1, 2, 100)))
    assert drain(listener) == [BlocksRequest(4, 1, 2, 100)]
    listener.receive_data(encode_frame(BlocksRequest(4, 7, 8, 100)))
    refused = drain(listener)
    assert [type(e) for e in refused] == [ProtocolFault], refused
    assert faults(refused) == [PeerFault.DUPLICATE_REQUEST]


def test_a_request_id_is_free_again_once_answered() -> None:
    pair = established()
    listener = pair.listener
    for first_height in (1, 5):
        listener.receive_data(encode_frame(BlocksRequest(4, first_height, first_height, 100)))
        assert drain(listener) == [BlocksRequest(4, first_height, first_height, 100)]
        assert listener.send(BlocksReply(4, first_height, (b"block",)))
    assert listener.state is ConnectionState.ESTABLISHED


def test_every_protocol_fault_has_a_refusal_case() -> None:
    covered = {fault for _, _, fault in REFUSALS}
    assert covered == set(PeerFault) - SHELL_FAULTS


def test_a_refused_frame_closes_the_connection_as_remote_refused() -> None:
    victim = connection(0, Role.LISTENER)
    victim.start()
    victim.receive_data(encode_frame(Refused("WRONG_CHAIN")) + encode_frame(Auth(bytes(64))))
    assert drain(victim) == [RemoteRefused("WRONG_CHAIN")]
    assert victim.state is ConnectionState.CLOSED
