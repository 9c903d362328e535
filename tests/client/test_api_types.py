"""``client.api_types`` parsers on hand-written answers: the typed values, and one clear
``BadResponseError`` (naming the field) for a missing or mistyped field, never a crash."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from client.api_types import (
    BadResponseError,
    CatchUpView,
    Json,
    NodeStatus,
    Output,
    PeerView,
    TxStatus,
    _parse,
)
from ledger.invariants import InvariantViolation


def _status_answer() -> Json:
    return {
        "height": 7,
        "view": 1,
        "primary": 1,
        "state_root": "ab" * 32,
        "last_commit_ms": None,
        "peers": [{"index": 2, "public_key": "cd" * 32, "connected": True}],
        "mempool_txs": 3,
        "mempool_bytes": 900,
        "catching_up": {"target_height": 9, "done_height": 8},
        "stopped": False,
        "stop_reason": None,
        "wal_latched": False,
        "msm_backend": "python",
    }


def test_node_status_parses_every_field_typed() -> None:
    status = NodeStatus.from_json(_status_answer())
    assert status == NodeStatus(
        height=7,
        view=1,
        primary=1,
        state_root=bytes.fromhex("ab" * 32),
        last_commit_ms=None,
        peers=(PeerView(2, bytes.fromhex("cd" * 32), True),),
        mempool_txs=3,
        mempool_bytes=900,
        catching_up=CatchUpView(9, 8),
        stopped=False,
        stop_reason=None,
        wal_latched=False,
        msm_backend="python",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("height", "7", "field 'height' is not an integer"),
        ("height", True, "field 'height' is not an integer"),
        ("state_root", "zz", "field 'state_root' is not hex"),
        ("stopped", 0, "field 'stopped' is not a boolean"),
        ("stop_reason", 5, "field 'stop_reason' is not a string"),
        ("last_commit_ms", 1.5, "field 'last_commit_ms' is not an integer"),
        ("peers", {}, "field 'peers' is not a list"),
    ],
)
def test_a_mistyped_field_is_named(field: str, value: object, message: str) -> None:
    answer = _status_answer() | {field: value}
    with pytest.raises(BadResponseError, match=message):
        NodeStatus.from_json(answer)


def test_a_missing_field_is_named_also_in_a_nested_object() -> None:
    answer = _status_answer()
    del answer["msm_backend"]
    with pytest.raises(BadResponseError, match="answer lacks field 'msm_backend'"):
        NodeStatus.from_json(answer)
    nested = _status_answer() | {"peers": [{"index": 2, "public_key": "cd" * 32}]}
    with pytest.raises(BadResponseError, match="answer lacks field 'connected'"):
        NodeStatus.from_json(nested)


def test_output_memos_are_base64_or_absent() -> None:
    answer: Json = {
        "id": "01" * 33,
        "tx_id": "02" * 32,
        "height": 3,
        "owner": "03" * 32,
        "asset": "04" * 32,
        "commitment": "05" * 32,
        "spent": False,
        "spent_by": None,
        "owner_memo": "AAE=",
    }
    output = Output.from_json(answer)
    assert (output.owner_memo, output.audit_memo, output.spent_by) == (b"\x00\x01", None, None)
    with pytest.raises(BadResponseError, match="field 'owner_memo' is not base64"):
        Output.from_json(answer | {"owner_memo": "not base64!"})


def test_tx_status_refuses_an_unknown_status() -> None:
    answer: Json = {"id": "aa" * 32, "status": "pending"}
    assert TxStatus.from_json(answer) == TxStatus(bytes.fromhex("aa" * 32), "pending")
    with pytest.raises(BadResponseError, match="unknown tx status 'lost'"):
        TxStatus.from_json(answer | {"status": "lost"})


@dataclass(frozen=True, slots=True)
class _Unparseable:
    when: float


def test_a_field_type_without_a_parser_is_a_bug_not_bad_input() -> None:
    with pytest.raises(InvariantViolation, match=r"_Unparseable.when: no parser for float"):
        _parse(_Unparseable, {"when": 1.5})
