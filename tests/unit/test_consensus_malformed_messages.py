"""Messages with ill-typed fields are dropped as malformed, never raised on.

Review finding: step() raised on message objects with ill-typed fields.

wire.py decodes strictly, but step() is the boundary the issue names ("a peer
fault never raises out of step()"), and a runtime may hand it messages that
never went through wire.py. Every field of every message kind, nested ones
included, is replaced by a wrong-typed or out-of-range value: the replica must
drop the message, count a ``malformed`` fault, and change nothing else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consensus.actions import ReportFault
from consensus.events import ClientBatchReady, MessageReceived, RequestSubmitted
from consensus.messages import (
    BatchReply,
    FetchBatch,
    Message,
    NewView,
    PreparedCertificate,
    Request,
    Status,
    ViewChange,
)
from consensus.sim.fixtures import (
    checkpoint,
    commit,
    digest_of,
    header,
    make_replica,
    metadata_of,
    pre_prepare,
    prepare,
    request,
    signed,
)

BATCH = (request(1),)
BAD_VALUES: tuple[Any, ...] = (None, "x", -1, 2**64, 1.5, True, b"", (), object())


def pp_cert() -> PreparedCertificate:
    return PreparedCertificate(
        header(0, 1, BATCH), (prepare(0, 1, BATCH, 1), prepare(0, 1, BATCH, 2))
    )


def view_change() -> ViewChange:
    return signed(ViewChange(1, 0, bytes(32), (), (pp_cert(),), 2))


def samples() -> list[Message]:
    vc = view_change()
    return [
        pre_prepare(0, 1, BATCH),
        prepare(0, 1, BATCH, 2),
        commit(0, 1, BATCH, 2),
        checkpoint(4, b"r" * 32, 2),
        vc,
        signed(NewView(1, (vc,), (header(1, 1, BATCH),), 1)),
        signed(FetchBatch(1, digest_of(BATCH), 2)),
        signed(BatchReply(1, digest_of(BATCH), BATCH, metadata_of(0), 2)),
        signed(Status(0, 1, 2)),
    ]


def mutations(value: Any, depth: int = 0) -> list[Any]:
    """``value`` with one field (at any depth) replaced by a bad value."""
    out: list[Any] = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            current = getattr(value, f.name)
            for bad in BAD_VALUES:
                if type(bad) is not type(current) or (type(bad) is int and not 0 <= bad < 2**64):
                    out.append(dataclasses.replace(value, **{f.name: bad}))
            if depth < 3:
                for inner in mutations(current, depth + 1):
                    out.append(dataclasses.replace(value, **{f.name: inner}))
    elif isinstance(value, tuple) and value:
        for inner in mutations(value[0], depth + 1):
            out.append((inner, *value[1:]))
        out.append((*value, "not-an-item"))
    return out


def cases() -> list[Message]:
    found: list[Message] = []
    for sample in samples():
        found.extend(mutations(sample))
    return found


def test_there_are_many_mutations() -> None:
    assert len(cases()) > 300


@pytest.mark.parametrize("replica_id", [0, 1])
def test_ill_typed_messages_are_dropped_and_counted(replica_id: int) -> None:
    for message in cases():
        replica = make_replica(replica_id)
        before = (dict(replica.own_votes), dict(replica.log.slots), replica.view)
        actions = replica.step(MessageReceived(2, message))
        assert [type(a) for a in actions] == [ReportFault], message
        assert isinstance(actions[0], ReportFault)
        assert actions[0].kind == "malformed"
        assert replica.fault_counts == {"malformed": 1}
        assert (dict(replica.own_votes), dict(replica.log.slots), replica.view) == before


def test_something_that_is_not_a_message_is_dropped() -> None:
    replica = make_replica(1)
    actions = replica.step(MessageReceived(2, "hello"))  # type: ignore[arg-type]
    assert actions == [ReportFault("malformed", 2, "not a message: str")]


def test_ill_typed_client_requests_are_ignored() -> None:
    primary = make_replica(0)
    bad: list[Any] = [
        Request("id", b"p"),  # type: ignore[arg-type]
        Request(b"id", None),  # type: ignore[arg-type]
        "not a request",
    ]
    for item in bad:
        assert primary.step(RequestSubmitted(item)) == []
    assert primary.step(ClientBatchReady(tuple(bad))) == []
    assert primary.step(ClientBatchReady(None)) == []  # type: ignore[arg-type]
    assert primary.ignored_counts["malformed_request"] == 2 * len(bad) + 1
    assert primary.pending == {}


def test_well_formed_messages_still_pass() -> None:
    replica = make_replica(1)
    for message in samples():
        replica.step(MessageReceived(message.sender, message))
    assert "malformed" not in replica.fault_counts


def test_checkpoint_with_a_huge_but_valid_seq_is_not_malformed() -> None:
    replica = make_replica(1)
    replica.step(MessageReceived(2, checkpoint(2**63, b"r" * 32, 2)))
    assert "malformed" not in replica.fault_counts


def test_a_list_of_requests_from_the_runtime_is_still_accepted() -> None:
    primary = make_replica(0)
    primary.step(ClientBatchReady([request(1), request(2)]))  # type: ignore[arg-type]
    assert set(primary.pending) == {b"req-1", b"req-2"}
