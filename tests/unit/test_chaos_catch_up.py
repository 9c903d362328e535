"""``chaos --scenario catch-up --transfers N`` keeps a node cut off until N transfers
committed (issue 12: catch-up of a node partitioned away while 10,000 transfers commit).

Before ``--transfers`` the cut lasted the duration only, and the load prepared at most
250 transfers per sender over 4 senders: never 10,000. The scenario may also have cut
off node 0, the node the commit watcher follows, which then sees no commit at all.
Here the scenario runs against fakes: network faults that record what they are told,
node heights from a table, a commit count that reaches N after a few polls.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from devnet import chaos_scenarios
from devnet.chaos_load import prepared_txs, senders_for
from devnet.chaos_reads import Reads
from devnet.chaos_scenarios import ChaosRun
from devnet.network import Devnet


class RecordedFaults:
    def __init__(self) -> None:
        self.partitions: list[list[list[int]]] = []
        self.healed_at_s: float | None = None

    def partition(self, groups: list[list[int]]) -> None:
        self.partitions.append(groups)

    def heal(self) -> None:
        self.healed_at_s = time.monotonic()


class CommitsAfterPolls:
    """Enough transfers committed from the ``polls``-th question on."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked >= self.polls


def a_run(tmp_path: Path, seed: int, deadline_s: float) -> ChaosRun:
    devnet = Devnet(tmp_path, 4, 1)
    return ChaosRun(devnet, "catch-up", random.Random(seed), deadline_s, 60.0, Reads(devnet, 1.0))


@pytest.fixture
def no_nodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], int]]:
    """Heights from a table and recoveries noted, without a node."""
    waited: list[tuple[list[int], int]] = []
    monkeypatch.setattr(chaos_scenarios, "heights", lambda reads, nodes: dict.fromkeys(nodes, 5))
    monkeypatch.setattr(ChaosRun, "top_height", lambda self, nodes=None: 90)

    def recovered(self: ChaosRun, what: str, nodes: list[int], above: int, since_s: float) -> None:
        waited.append((nodes, above))
        self.recoveries_s.append(0.5)

    monkeypatch.setattr(ChaosRun, "recovered", recovered)
    return waited


def test_the_cut_lasts_until_enough_transfers_committed(
    tmp_path: Path, no_nodes: list[tuple[list[int], int]]
) -> None:
    run = a_run(tmp_path, 1, time.monotonic() + 60.0)
    faults = RecordedFaults()
    run.network = faults  # type: ignore[assignment]
    enough = CommitsAfterPolls(3)
    run.enough_committed = enough
    started_s = time.monotonic()
    chaos_scenarios.catch_up(run)
    assert faults.healed_at_s is not None
    assert faults.healed_at_s - started_s < 10.0  # not the 60 s deadline
    assert enough.asked == 3
    alone = faults.partitions[0][0][0]
    assert no_nodes == [([alone], 89)]
    assert run.rounds == 1 and run.recoveries_s == [0.5]
    assert "85 blocks behind at the heal" in run.notes[0]


def test_without_transfers_the_cut_lasts_the_duration(
    tmp_path: Path, no_nodes: list[tuple[list[int], int]]
) -> None:
    run = a_run(tmp_path, 1, time.monotonic() + 1.5)
    faults = RecordedFaults()
    run.network = faults  # type: ignore[assignment]
    started_s = time.monotonic()
    chaos_scenarios.catch_up(run)
    assert faults.healed_at_s is not None
    assert faults.healed_at_s - started_s >= 1.4


def test_node_0_the_watched_node_is_never_cut_off(
    tmp_path: Path, no_nodes: list[tuple[list[int], int]]
) -> None:
    alone = set()
    for seed in range(40):
        run = a_run(tmp_path, seed, time.monotonic())
        faults = RecordedFaults()
        run.network = faults  # type: ignore[assignment]
        chaos_scenarios.catch_up(run)
        alone.add(faults.partitions[0][0][0])
    assert alone == {1, 2, 3}


def test_ten_thousand_transfers_are_prepared_on_a_hundred_senders() -> None:
    senders = senders_for(10_000)
    assert senders == 100
    count, transfers = prepared_txs(8.0, 600.0, senders, 10_000)
    assert transfers >= 10_000 + senders  # the baseline's come on top
    assert count > transfers
    assert senders_for(None) == 4
    assert prepared_txs(8.0, 30.0, 4) == (40 + 8 * 150, 40)  # unchanged without --transfers
