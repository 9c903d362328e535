"""Review finding: a byzantine primary could censor a request for good.

Requests are deduplicated by ``request_id`` alone, and nothing tied the id to
the payload. A byzantine primary that saw an honest request could propose
``Request(same id, other payload)``: backups accepted it, it committed, and
every replica then dropped the honest request as already committed and
refused it on resubmission. The runtime can now inject ``request_id_of``
(e.g. the tx hash the node already computes): backups refuse a batch whose
ids do not match their payloads, and replicas ignore such client requests.
"""

from __future__ import annotations

import hashlib

import pytest

from consensus.actions import ReportFault
from consensus.events import MessageReceived, RequestSubmitted
from consensus.invariants import InvariantViolation
from consensus.messages import Request
from consensus.persistence import Record
from consensus.replica import Replica
from consensus.sim.fixtures import make_config, pre_prepare
from consensus.sim.keys import signer, verify


def request_id_of(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


def honest_request() -> Request:
    return Request(request_id_of(b"pay alice 5"), b"pay alice 5")


def backup() -> Replica:
    return Replica(make_config(1), signer(1), verify, request_id_of=request_id_of)


def test_a_batch_with_a_forged_payload_under_an_honest_id_is_refused() -> None:
    replica = backup()
    replica.step(RequestSubmitted(honest_request()))
    forged = (Request(honest_request().request_id, b"pay mallory 5"),)
    actions = replica.step(MessageReceived(0, pre_prepare(0, 1, forged)))
    assert actions == [ReportFault("invalid_batch", 0, "request id does not match its payload")]
    assert replica.own_votes == {}
    assert honest_request().request_id in replica.pending


def test_a_batch_of_matching_requests_is_voted() -> None:
    replica = backup()
    replica.step(MessageReceived(0, pre_prepare(0, 1, (honest_request(),))))
    assert ("Prepare", 0, 1) in replica.own_votes


def test_client_requests_whose_id_does_not_match_are_ignored() -> None:
    replica = backup()
    replica.step(RequestSubmitted(Request(b"made-up", b"pay alice 5")))
    assert replica.pending == {}
    assert replica.ignored_counts["malformed_request"] == 1


def test_restore_takes_the_same_hook() -> None:
    records: list[Record] = []
    replica = Replica.restore(
        make_config(1),
        signer(1),
        verify,
        records=records,
        executed_seq=0,
        state_root=bytes(32),
        request_id_of=request_id_of,
    )
    replica.step(RequestSubmitted(Request(b"made-up", b"x")))
    assert replica.pending == {}


def test_a_batch_of_requests_held_pending_is_not_hashed_again() -> None:
    """A backup holds most of a PRE-PREPARE's requests already, their ids checked by
    ``on_requests``: the same bytes under the same id are taken without a hash (the
    id was a SHA-256 a tx three times over on every node)."""
    calls: list[bytes] = []

    def counted(payload: bytes) -> bytes:
        calls.append(payload)
        return request_id_of(payload)

    replica = Replica(make_config(1), signer(1), verify, request_id_of=counted)
    replica.step(RequestSubmitted(honest_request()))
    other = Request(request_id_of(b"pay bob 7"), b"pay bob 7")
    calls.clear()
    replica.step(MessageReceived(0, pre_prepare(0, 1, (honest_request(), other))))
    assert ("Prepare", 0, 1) in replica.own_votes
    assert calls == [b"pay bob 7"]  # only the request it did not hold


def test_add_pending_refuses_a_request_whose_id_does_not_match() -> None:
    replica = backup()
    with pytest.raises(InvariantViolation):
        replica.add_pending(Request(b"made-up", b"pay alice 5"))
