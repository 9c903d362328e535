"""``python -m devnet chaos --rounds K`` stops the fault phase after K rounds (issue 12).

The option was parsed and passed to ``run_chaos``, which never gave it to the run: the
soak's ``--rounds 200`` was ignored and only ``--duration`` ended it. Here a scenario that
counts rounds as fast as it may runs against a fake node API, the load and watcher
replaced by idle fakes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from devnet import chaos, chaos_scenarios
from devnet.chaos_scenarios import ChaosRun
from devnet.network import Devnet
from tests.unit.fake_node_api import SlowNode, running


class IdleLoad:
    """Stands in for the load: acknowledges nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.seen_s: dict[bytes, float] = {}

    def start(self) -> None:
        return

    def note_tip(self) -> None:
        return

    def stop(self) -> list[object]:
        return []

    error = None
    report = None


def count_rounds(run: ChaosRun) -> None:
    while run.time_left():
        run.rounds += 1
        time.sleep(0.01)


def test_rounds_limit_ends_the_fault_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(chaos_scenarios.SCENARIOS, "count", count_rounds)
    monkeypatch.setattr(chaos, "GeneratorLoad", IdleLoad)
    monkeypatch.setattr(chaos, "CommitWatcher", IdleLoad)
    with running(SlowNode()) as node:
        devnet = Devnet(tmp_path, 1, node.server_address[1])
        devnet.node_dir(0).mkdir(parents=True)
        devnet.pid_file(0).write_text(f"{os.getpid()}\n")  # "running": this process
        result = chaos.run_chaos(devnet, "count", 4.0, 1, max_rounds=3)
    assert result.rounds == 3
    assert result.violations == [] and result.forks == 0 and result.converged
