"""One code path casts votes (STYLE.md: no logic written four times).

``ReplicaState.cast_votes`` signs, remembers, persists and only then
broadcasts; no handler writes ``own_votes`` or calls ``store_own`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import consensus
from consensus.actions import Broadcast, Persist
from consensus.invariants import InvariantViolation
from consensus.messages import Commit, Prepare, PreparedCertificate
from consensus.persistence import PreparedRecord, VoteRecord
from consensus.sim.fixtures import make_replica, pre_prepare, prepare, request, signed

ALLOWED = {"replica_state.py", "restart.py"}  # the vote path itself, and replaying the WAL


def vote_writers(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Attribute)
                    and target.value.attr == "own_votes"
                ):
                    found.append(f"{path.name}:{node.lineno} writes own_votes")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "store_own"
        ):
            found.append(f"{path.name}:{node.lineno} calls store_own")
    return found


def test_only_cast_votes_records_a_vote() -> None:
    package = Path(consensus.__file__).parent
    writers = [
        w for p in sorted(package.glob("*.py")) if p.name not in ALLOWED for w in vote_writers(p)
    ]
    assert writers == []
    assert vote_writers(package / "normal_case.py") == []  # the scan sees this module


def test_cast_votes_persists_everything_in_one_write_before_any_broadcast() -> None:
    replica = make_replica(1)
    cert_pp = pre_prepare(0, 1, (request(1),))
    record = PreparedRecord(PreparedCertificate(cert_pp, ()))
    replica.cast_votes(
        [Prepare(0, 2, cert_pp.digest, 1), Commit(0, 1, cert_pp.digest, 1)], (record,)
    )
    p = signed(Prepare(0, 2, cert_pp.digest, 1))
    c = signed(Commit(0, 1, cert_pp.digest, 1))
    assert replica.outbox == [
        Persist((record, VoteRecord(p), VoteRecord(c))),
        Broadcast(p),
        Broadcast(c),
    ]
    assert replica.own_votes == {("Prepare", 0, 2): p.digest, ("Commit", 0, 1): c.digest}


def test_a_second_vote_for_one_key_is_a_local_bug() -> None:
    replica = make_replica(1)
    replica.cast_votes([prepare(0, 1, (request(1),), 1)])
    with pytest.raises(InvariantViolation):
        replica.cast_votes([prepare(0, 1, (request(2),), 1)])
