"""benchmarks.node_profile: the worker thread is in the profile and its blocks are counted."""

from __future__ import annotations

import pstats
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks import node_profile
from tests.spec.ledger_world import World


def _fake_node(config: Path) -> int:
    """Executes three blocks on a worker thread, as the node's ``SerialWorker`` does."""
    world = World()
    store = world.new_store()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="veil-worker") as worker:
        for _ in range(3):
            worker.submit(world.commit, store, []).result()
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
