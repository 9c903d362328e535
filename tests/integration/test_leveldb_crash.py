"""SIGKILL a real writer process at random moments; the store must reopen at a whole block.

After each kill the reopened ``LevelDBStore`` must hold exactly the blocks
0..h for some h (no later block, tx or index entry), h must be at least the
last height the writer reported as committed (a synced batch survives), and
its state, owner index and state root must equal an independent
``MemoryStore`` replay of blocks 0..h.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from ledger.leveldb_store import LevelDBStore
from ledger.state_root import compute_root
from ledger.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("leveldb_crash_writer.py")
KILLS = int(os.environ.get("VEIL_CRASH_KILLS", "40"))
SEED = int(os.environ.get("VEIL_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))


def load_writer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("leveldb_crash_writer", WRITER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


writer = load_writer()


def spawn(db_path: Path, max_height: int | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [sys.executable, str(WRITER), str(db_path)]
    if max_height is not None:
        args.append(str(max_height))
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def last_committed(output: str) -> int:
    heights = [int(line.split()[1]) for line in output.splitlines() if line.startswith("committed")]
    return max(heights, default=-1)


class Replay:
    """The chain rebuilt independently in a MemoryStore, advanced as the disk store grows."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.checked_height = -1

    def advance_to(self, height: int) -> None:
        while self.store.height() < height:
            writer.commit(self.store, writer.block_for(self.store.height() + 1))


def check_store(db_path: Path, replay: Replay, at_least: int, seed_note: str) -> int:
    with LevelDBStore(db_path) as store:
        height = store.height()
        assert height >= at_least, f"{seed_note}: lost a committed block ({height} < {at_least})"
        assert height >= replay.checked_height, seed_note
        replay.advance_to(height)
        if height < 0:
            assert store.state_root() == replay.store.state_root(), seed_note
            return height
        # exactly blocks 0..height are there, with their certificates and indexes
        for h in range(max(0, replay.checked_height), height + 1):
            block = writer.block_for(h)
            assert store.block_at(h) == block.block_bytes, f"{seed_note}: block {h}"
            assert store.certificate_at(h) == block.certificate, f"{seed_note}: cert {h}"
            assert store.metadata_at(h) == block.metadata, f"{seed_note}: metadata {h}"
            assert store.rejected_at(h) == block.rejected, f"{seed_note}: rejected {h}"
            assert store.block_hash_at(h) == block.block_hash, seed_note
            assert store.block_by_hash(block.block_hash) == block.block_bytes, seed_note
            for index, tx_id in enumerate(block.tx_ids):
                assert store.tx_location(tx_id) == (h, index), f"{seed_note}: tx {h}/{index}"
        after = writer.block_for(height + 1)
        assert store.block_at(height + 1) is None, seed_note
        assert store.metadata_at(height + 1) is None, seed_note
        assert store.block_by_hash(after.block_hash) is None, seed_note
        assert store.height_of_block(after.block_hash) is None, seed_note
        for tx_id in after.tx_ids:
            assert store.tx_location(tx_id) is None, f"{seed_note}: tx of the next block"
        assert store.tip_hash() == writer.block_for(height).block_hash, seed_note
        # state, owner index and root equal the independent replay
        state = dict(store.iter_state())
        assert state == dict(replay.store.iter_state()), f"{seed_note}: state at {height}"
        for owner in range(writer.OWNERS):
            owner_key = writer.owner_of(owner)
            expected = replay.store.outputs_by_owner(owner_key)
            assert store.outputs_by_owner(owner_key) == expected, f"{seed_note}: owner {owner}"
        assert store.state_root() == replay.store.state_root(), f"{seed_note}: root at {height}"
        replay.checked_height = height
        return height


def test_sigkill_at_random_points_leaves_the_last_whole_block(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db_path = tmp_path / "db"
    replay = Replay()
    height = -1
    mid_open_kills = 0
    started = time.monotonic()
    for kill in range(KILLS):
        note = f"seed {SEED} (VEIL_CRASH_SEED), kill {kill}"
        process = spawn(db_path)
        assert process.stdout is not None
        if rng.random() < 0.1:
            # kill while the store is opening (LevelDB log recovery, schema and tip checks)
            time.sleep(rng.uniform(0.0, 0.3))
            mid_open_kills += 1
        else:
            ready = process.stdout.readline()
            assert ready.startswith("ready"), f"{note}: writer said {ready!r}"
            time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.05), rng.uniform(0.0, 0.35)]))
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL, f"{note}: writer exited by itself"
        reported = last_committed(output)
        height = check_store(db_path, replay, max(reported, height), note)
        assert reported <= height <= reported + 1 or reported == -1, note
    # the chain actually grew, and the replayed root is the from-scratch root of its state
    assert height >= KILLS // 4, f"seed {SEED}: only reached height {height}"
    assert replay.store.state_root() == compute_root(dict(replay.store.iter_state()))
    with LevelDBStore(db_path) as store:
        assert store.verify_state_root() == replay.store.state_root()
    print(
        f"{KILLS} kills ({mid_open_kills} mid-open), height {height}, "
        f"{time.monotonic() - started:.1f} s, seed {SEED}"
    )


def test_writer_runs_to_completion_without_kill(tmp_path: Path) -> None:
    """The harness itself: an unkilled writer reaches its target and reports every block."""
    db_path = tmp_path / "db"
    process = spawn(db_path, max_height=5)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert last_committed(output) == 5
    replay = Replay()
    assert check_store(db_path, replay, 5, "no kill") == 5
