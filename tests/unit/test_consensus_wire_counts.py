"""The decoder bounds element counts, not only bytes (defect 4).

A member's 16.2 MB FORWARDED-REQUESTS of 2.7 M ``(b"x", b"")`` requests took ~7 s
to decode on the node's event loop before the replica refused it for exceeding
``max_batch_size``. Given ``WireLimits``, an array longer than an honest message
holds is refused as a ``WireError`` before its items are built, and every honest
message at its largest counts still decodes.
"""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import wire
from consensus.bounds import wire_limits
from consensus.messages import (
    BatchReply,
    Checkpoint,
    ForwardedRequests,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    PrePrepareHeader,
    ProposalMetadata,
    Request,
    ViewChange,
)
from consensus.persistence import (
    BatchRecord,
    NewViewRecord,
    PreparedRecord,
    Record,
    StableCheckpointRecord,
    VoteRecord,
)
from consensus.sim import runner
from consensus.sim import wire_check as sim_wire_check
from consensus.sim.fixtures import make_config
from consensus.sim.scenario import build_scenario
from consensus.wire import (
    MAX_WIRE_BYTES,
    U64_MAX,
    WireError,
    WireLimits,
    decode_message,
    decode_record,
    encode_message,
    encode_record,
)
from tests.unit.test_consensus_wire import MESSAGES, RECORDS

# Three different counts, and the batch below the window, so both the header
# check in msgpack (longest_array = 16) and the per-array one are exercised.
N, WINDOW, BATCH = 4, 16, 8
LIMITS = WireLimits(max_batch_size=BATCH, replica_count=N, watermark_window=WINDOW)
BIG = U64_MAX
DIGEST, SIGNATURE = b"\xff" * 32, b"\xff" * 64
METADATA = ProposalMetadata(BIG, BIG)
HEADER = PrePrepareHeader(BIG, BIG, DIGEST, METADATA, BIG, SIGNATURE)
PREPARE = Prepare(BIG, BIG, DIGEST, BIG, SIGNATURE)
CHECKPOINT = Checkpoint(BIG, DIGEST, BIG, SIGNATURE)


def requests(count: int) -> tuple[Request, ...]:
    return tuple(Request(b"%032d" % i, b"p") for i in range(count))


def view_change(proof: int = N, certs: int = WINDOW, prepares: int = N - 1) -> ViewChange:
    cert = PreparedCertificate(HEADER, (PREPARE,) * prepares)
    return ViewChange(BIG, BIG, DIGEST, (CHECKPOINT,) * proof, (cert,) * certs, BIG, SIGNATURE)


def new_view(view_changes: int = N, headers: int = WINDOW) -> NewView:
    return NewView(BIG, (view_change(),) * view_changes, (HEADER,) * headers, BIG, SIGNATURE)


# Each message with one of its arrays at a given count, the others at their largest.
GROWN_MESSAGES: dict[str, tuple[int, Callable[[int], Message]]] = {
    "PrePrepare.batch": (
        BATCH,
        lambda k: PrePrepare(BIG, BIG, DIGEST, requests(k), METADATA, BIG, SIGNATURE),
    ),
    "BatchReply.batch": (
        BATCH,
        lambda k: BatchReply(BIG, DIGEST, requests(k), METADATA, BIG, SIGNATURE),
    ),
    "ForwardedRequests.requests": (
        BATCH,
        lambda k: ForwardedRequests(BIG, requests(k), BIG, SIGNATURE),
    ),
    "ViewChange.checkpoint_proof": (N, lambda k: view_change(proof=k)),
    "ViewChange.prepared": (WINDOW, lambda k: view_change(certs=k)),
    "PreparedCertificate.prepares": (N - 1, lambda k: view_change(prepares=k)),
    "NewView.view_changes": (N, lambda k: new_view(view_changes=k)),
    "NewView.pre_prepares": (WINDOW, lambda k: new_view(headers=k)),
}
GROWN_RECORDS: dict[str, tuple[int, Callable[[int], Record]]] = {
    "BatchRecord.batch": (BATCH, lambda k: BatchRecord(BIG, DIGEST, requests(k), METADATA)),
    "StableCheckpointRecord.proof": (
        N,
        lambda k: StableCheckpointRecord(BIG, DIGEST, (CHECKPOINT,) * k),
    ),
    "PreparedRecord.prepares": (
        N - 1,
        lambda k: PreparedRecord(PreparedCertificate(HEADER, (PREPARE,) * k)),
    ),
    "NewViewRecord.view_changes": (N, lambda k: NewViewRecord(new_view(view_changes=k))),
    "VoteRecord(PrePrepare).batch": (
        BATCH,
        lambda k: VoteRecord(PrePrepare(BIG, BIG, DIGEST, requests(k), METADATA, BIG, SIGNATURE)),
    ),
}


@pytest.mark.parametrize("name", GROWN_MESSAGES)
def test_a_message_at_its_largest_counts_decodes_and_one_more_item_is_refused(name: str) -> None:
    most, build = GROWN_MESSAGES[name]
    largest = build(most)
    assert decode_message(encode_message(largest), LIMITS) == largest
    over = encode_message(build(most + 1))
    assert decode_message(over) == build(most + 1)  # no limits: bytes only, as before
    # Over the longest array of all, msgpack refuses it at its header.
    with pytest.raises(WireError, match=rf"more than {most} |exceeds max_array_len\({most}\)"):
        decode_message(over, LIMITS)


@pytest.mark.parametrize("name", GROWN_RECORDS)
def test_a_record_at_its_largest_counts_decodes_and_one_more_item_is_refused(name: str) -> None:
    most, build = GROWN_RECORDS[name]
    largest = build(most)
    assert decode_record(encode_record(largest), LIMITS) == largest
    with pytest.raises(WireError, match=rf"more than {most} |exceeds max_array_len\({most}\)"):
        decode_record(encode_record(build(most + 1)), LIMITS)


def test_an_array_longer_than_any_allowed_is_refused_at_its_header() -> None:
    # 17 > longest_array: msgpack stops at the header; the 17 items are not even
    # there, so reading them would have failed differently ("incomplete").
    assert LIMITS.longest_array == WINDOW
    whole = encode_message(ForwardedRequests(0, requests(WINDOW + 1), 1, SIGNATURE))
    header_end = whole.index(b"%032d" % 0) - 3  # the first request's 0x92 0xc4 0x20
    cut = whole[:header_end]
    with pytest.raises(WireError, match=r"17 exceeds max_array_len\(16\)"):
        decode_message(cut, LIMITS)
    with pytest.raises(WireError, match="incomplete"):
        decode_message(cut)


def test_the_count_is_checked_before_any_item_is_decoded() -> None:
    # Nine requests (under msgpack's bound of 16, over the batch's 8), the last one
    # malformed: the refusal names the count, so no item was looked at first.
    good = [[r.request_id, r.payload] for r in requests(BATCH)]
    data = msgpack.packb(
        ["ForwardedRequests", [0, [*good, [b"", b"p"]], 1, SIGNATURE]], use_bin_type=True
    )
    with pytest.raises(WireError, match="request_id is not"):
        decode_message(data)
    with pytest.raises(WireError, match=f"more than {BATCH} requests"):
        decode_message(data, LIMITS)


def test_the_reported_relay_is_refused_without_building_its_requests() -> None:
    """The defect's payload: 2.7 M ``(b"x", b"")`` requests in 16.2 MB. Building them
    allocated hundreds of MB; refused at the array's header, decoding allocates a
    few objects (tracemalloc counts bytes, not time)."""
    count = 2_700_000
    data = msgpack.packb(
        ["ForwardedRequests", [0, [[b"x", b""]] * count, 1, SIGNATURE]], use_bin_type=True
    )
    assert len(data) <= MAX_WIRE_BYTES
    node_limits = wire_limits(make_config(0))
    decode_message(encode_message(ForwardedRequests(0, (), 1, SIGNATURE)), node_limits)
    tracemalloc.start()
    try:
        with pytest.raises(WireError, match=f"{count} exceeds max_array_len"):
            decode_message(data, node_limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 10


def test_wire_limits_are_the_configs_counts() -> None:
    config = make_config(0, max_batch_size=7)
    limits = wire_limits(config)
    assert (limits.max_batch_size, limits.replica_count, limits.watermark_window) == (
        7,
        config.replica_count,
        config.watermark_window,
    )
    with pytest.raises(ValueError, match="positive"):
        WireLimits(max_batch_size=0, replica_count=4, watermark_window=16)


def _array_items() -> set[object]:
    kinds = (*wire.MESSAGE_TYPES.values(), *wire.RECORD_TYPES.values(), *wire._NESTED)
    items: set[object] = set()
    for kind in kinds:
        for hint in get_type_hints(kind).values():
            if get_origin(hint) is tuple:
                items.add(get_args(hint)[0])
    return items


def test_every_array_in_the_schema_has_a_count_bound() -> None:
    items = _array_items()
    assert items == {
        Request,
        Checkpoint,
        Prepare,
        PreparedCertificate,
        ViewChange,
        PrePrepareHeader,
    }
    for item in items:
        assert LIMITS.most_items(item) >= 1
    with pytest.raises(TypeError, match="no count bound"):
        LIMITS.most_items(bytes)


@pytest.mark.parametrize("value", [*MESSAGES, *RECORDS], ids=lambda v: type(v).__name__)
def test_the_wire_tests_messages_and_records_decode_under_the_sim_fixture_limits(
    value: Any,
) -> None:
    limits = wire_limits(make_config(0, max_batch_size=2))
    if isinstance(value, Record):
        assert decode_record(encode_record(value), limits) == value
    else:
        assert decode_message(encode_message(value), limits) == value


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, N + 1),
    st.integers(0, WINDOW + 1),
    st.integers(0, N),
    st.integers(0, N + 1),
    st.integers(0, WINDOW + 1),
)
def test_a_new_view_decodes_exactly_when_every_count_is_within_its_bound(
    proof: int, certs: int, prepares: int, view_changes: int, headers: int
) -> None:
    vc = view_change(proof, certs, prepares)
    nv = NewView(BIG, (vc,) * view_changes, (HEADER,) * headers, BIG, SIGNATURE)
    vc_within = proof <= N and certs <= WINDOW and (prepares <= N - 1 or certs == 0)
    within = view_changes <= N and headers <= WINDOW and (vc_within or view_changes == 0)
    data = encode_message(nv)
    if within:
        assert decode_message(data, LIMITS) == nv
    else:
        with pytest.raises(WireError):
            decode_message(data, LIMITS)


@pytest.mark.parametrize(
    ("seed", "nodes", "kinds"),
    [
        (8, 4, ("lying_view_change", "isolate_primary", "drop", "crash_restart")),
        (16, 4, ("silent_primary", "split_2_2", "duplicate", "crash_lose_unsynced")),
        (24, 7, ("equivocating_new_view", "partition_asymmetric", "reorder", "duplicate")),
    ],
)
def test_honest_traffic_of_a_wire_seed_decodes_under_the_configs_limits(
    monkeypatch: pytest.MonkeyPatch, seed: int, nodes: int, kinds: tuple[str, ...]
) -> None:
    """Real protocol traffic, view changes included, through the limits a node
    would pass: an honest refusal fails the run (``WireCheck``)."""
    scenario = build_scenario(seed, nodes, kinds, every_kind=True, wire=True)
    limits = wire_limits(runner.sim_config(0, scenario.nodes, scenario))
    decoded: dict[str, int] = {}

    def counting(decode: Callable[..., Any], data: bytes) -> Any:
        value = decode(data, limits)
        decoded[type(value).__name__] = decoded.get(type(value).__name__, 0) + 1
        return value

    monkeypatch.setattr(
        sim_wire_check, "decode_message", functools.partial(counting, decode_message)
    )
    monkeypatch.setattr(sim_wire_check, "decode_record", functools.partial(counting, decode_record))
    sim = runner.Simulation(scenario)
    result = sim.run()
    assert sim.wire is not None and sim.wire.refusals == []
    assert result.safety_violations == [] and result.liveness_failure is None
    assert result.view_changes > 0
    assert {"PrePrepare", "ViewChange", "NewView", "Checkpoint", "VoteRecord"} <= set(decoded)
