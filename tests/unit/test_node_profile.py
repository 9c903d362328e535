"""benchmarks.node_profile: the worker thread is in the profile and its blocks are counted."""

from __future__ import annotations

import asyncio
import functools
import pstats
from pathlib import Path

import pytest

from benchmarks import node_profile
from node.serial_worker import SerialWorker
from tests.spec.ledger_world import World


def _fake_node(config: Path) -> int:
    """Executes three blocks on the node's ``SerialWorker`` thread."""
    world = World()
    store = world.new_store()
    worker = SerialWorker()

    async def three_blocks() -> None:
        for _ in range(3):
            await worker.run(functools.partial(world.commit, store, []))

    try:
        asyncio.run(three_blocks())
    finally:
        worker.close()
    return 0


@pytest.mark.parametrize("timer", node_profile.TIMERS)
def test_the_worker_threads_blocks_are_in_the_profile_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], timer: str
) -> None:
    monkeypatch.setattr(node_profile, "node_main", _fake_node)
    out = tmp_path / "node.prof"
    assert node_profile.profile_node(tmp_path / "node.toml", out, top=5, timer=timer) == 0
    assert node_profile.executed_blocks(pstats.Stats(str(out))) == 3
    assert "blocks this node executed while profiled: 3" in capsys.readouterr().out


def test_an_unknown_timer_is_refused() -> None:
    with pytest.raises(ValueError, match="timer must be one of"):
        node_profile.new_profile("gpu")
