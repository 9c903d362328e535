"""WAL compaction (issue 8 §4): ``live_records(records)`` drops dead records, and
a replica restored from the live records behaves like one restored from all.

The simulator's restarts check it: at every restart the replica is rebuilt
twice, from every durable record and from ``live_records`` of them; their
protocol state must agree, and the run continues from the compacted log (which
also replaces the durable one, as a node's compaction would) and must stay
safe and live.
"""

from __future__ import annotations

import pytest

from consensus.persistence import (
    Record,
    StableCheckpointRecord,
    ViewRecord,
    VoteRecord,
    live_records,
)
from consensus.replica import Replica
from consensus.sim.fixtures import checkpoint, make_replica, pre_prepare, prepare, request
from consensus.sim.keys import verify
from consensus.sim.runner import Simulation
from consensus.sim.scenario import build_scenario


def protocol_state(replica: Replica) -> object:
    """What a restart must bring back (see consensus/restart.py)."""
    view = replica.view
    return (
        (view, replica.view_active),
        (replica.stable_seq, replica.stable_root, replica.stable_proof),
        {k: d for k, d in replica.own_votes.items() if k[1] >= view},
        dict(replica.own_view_changes),
        replica.new_view_message,
        replica.next_seq,
        {s: slot.prepared for s, slot in replica.log.slots.items() if slot.prepared},
        {s: slot.pre_prepares.get(view) for s, slot in replica.log.slots.items()},
        sorted(replica.inflight.items()),
        replica.state_transfer_target,
    )


class CompactingRestarts(Simulation):
    """Restarts from compacted logs, checking each against a full replay."""

    restarts_checked = 0
    records_dropped = 0

    def restart(self, index: int) -> None:
        if self.replicas[index] is not None:
            return
        storage = self.storage[index]
        full = list(storage.durable)
        super().restart(index)
        from_all = self.replicas[index]
        storage.durable = live_records(full)
        self.replicas[index] = None
        super().restart(index)
        from_live = self.replicas[index]
        assert from_all is not None and from_live is not None
        assert protocol_state(from_live) == protocol_state(from_all), f"seed restart r{index}"
        CompactingRestarts.restarts_checked += 1
        CompactingRestarts.records_dropped += len(full) - len(storage.durable)


KINDS = ("crash_restart", "crash_lose_unsynced", "drop", "isolate_primary", "lagging_replica")


@pytest.mark.parametrize("seed", range(12))
def test_restarts_from_compacted_logs_match_and_stay_safe_and_live(seed: int) -> None:
    result = CompactingRestarts(build_scenario(seed, 4, KINDS, every_kind=True)).run()
    assert result.safety_violations == []
    assert result.liveness_failure is None


def test_the_compaction_runs_did_restart_and_drop_records() -> None:
    # Guards the test above against passing vacuously.
    CompactingRestarts.restarts_checked = CompactingRestarts.records_dropped = 0
    for seed in range(4):
        CompactingRestarts(build_scenario(seed, 4, KINDS, every_kind=True)).run()
    assert CompactingRestarts.restarts_checked >= 4
    assert CompactingRestarts.records_dropped > 0


def test_live_records_drops_what_a_replay_discards() -> None:
    backup = make_replica(1)
    records: list[Record] = []
    for seq in range(1, 5):
        pp = pre_prepare(0, seq, (request(seq),))
        records += [VoteRecord(prepare(0, seq, (request(seq),), 1)), VoteRecord(pp)]
    proof = tuple(checkpoint(4, b"r" * 32, s) for s in (0, 1, 2))
    old_proof = tuple(checkpoint(4, b"q" * 32, s) for s in (0, 1, 2))
    records += [
        StableCheckpointRecord(4, b"r" * 32, proof),
        ViewRecord(1, False),
        ViewRecord(1, True),
        StableCheckpointRecord(4, b"q" * 32, old_proof),  # a replay keeps the first
    ]
    tail = VoteRecord(prepare(1, 5, (request(5),), 1))
    records.append(tail)
    live = live_records(records)
    assert live == [StableCheckpointRecord(4, b"r" * 32, proof), ViewRecord(1, True), tail]
    restored = [
        Replica.restore(
            backup.config, lambda data: b"", verify, records=r, executed_seq=4, state_root=b"r" * 32
        )
        for r in (records, live)
    ]
    assert protocol_state(restored[0]) == protocol_state(restored[1])
