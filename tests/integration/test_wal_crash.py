"""SIGKILL a real WAL writer at random moments: the log reopens as a batch-aligned prefix.

After each kill the reopened ``WriteAheadLog`` must hold exactly the first N
records the writer meant to append, N must end a batch (a ``Persist`` is all or
nothing), and N must be at least what the writer last reported as synced.
The seed is printed; ``VEIL_WAL_CRASH_SEED`` replays it.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from node.wal import WriteAheadLog

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("wal_crash_writer.py")
KILLS = int(os.environ.get("VEIL_WAL_CRASH_KILLS", "15"))
SEED = int(os.environ.get("VEIL_WAL_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


writer = load_script(WRITER)


def run_and_kill(script: Path, wal_path: Path, rng: random.Random) -> str:
    """Run ``script`` on ``wal_path``, SIGKILL it at a random moment once it says ``ready``,
    and return what it printed."""
    proc = subprocess.Popen(
        [sys.executable, str(script), str(wal_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    assert ready.startswith("ready"), ready
    time.sleep(rng.uniform(0.0, 0.15))
    proc.send_signal(signal.SIGKILL)
    output, _ = proc.communicate()
    return output


def reported(output: str, word: str) -> list[int]:
    """The numbers of the writer's ``WORD N`` lines."""
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith(word)]


def test_sigkill_leaves_a_batch_aligned_prefix(tmp_path: Path) -> None:
    print(f"wal crash seed {SEED} (replay: VEIL_WAL_CRASH_SEED={SEED})")
    rng = random.Random(SEED)
    path = tmp_path / "wal"
    last_synced = 0
    for _ in range(KILLS):
        output = run_and_kill(WRITER, path, rng)
        last_synced = max([last_synced, *reported(output, "synced")])
        with WriteAheadLog(path) as wal:
            count = len(wal)
            assert count >= last_synced, (count, last_synced, SEED)
            assert count in set(writer.boundaries(count)), (count, SEED)
            expected: list[object] = []
            for records in writer.batches():
                if len(expected) >= count:
                    break
                expected.extend(records)
            assert list(wal.records) == expected, SEED
        last_synced = count
    assert last_synced > 0, "the writer never synced anything: the test checked nothing"


COMPACTION_WRITER = Path(__file__).with_name("wal_compaction_crash_writer.py")


def test_sigkill_during_compaction_leaves_the_old_log_or_the_compacted_one(
    tmp_path: Path,
) -> None:
    """The writer compacts with ``live_records`` every fifth batch; after each kill
    the reopened log is exactly the log after some operation at or after the last
    one the writer reported done (never a half-compacted log), and the writer
    restarts from it."""
    print(f"wal compaction crash seed {SEED} (replay: VEIL_WAL_CRASH_SEED={SEED})")
    model = load_script(COMPACTION_WRITER)
    rng = random.Random(SEED)
    path = tmp_path / "wal"
    last_done = 0
    compactions_seen = 0
    for _ in range(KILLS):
        output = run_and_kill(COMPACTION_WRITER, path, rng)
        last_done = max([last_done, *reported(output, "done")])
        with WriteAheadLog(path) as wal:
            on_disk = wal.records
        states = model.states()
        for number, state in enumerate(states):
            if number >= last_done and state == on_disk:
                break
            # The operation under way when the kill came may have reached the disk.
            assert number <= last_done + 1, (
                f"seed {SEED}: the log after a kill is no state at or after operation {last_done}"
            )
        compactions_seen += sum(
            1 for kind, _ in list(itertools.islice(model.operations(), number)) if kind == "compact"
        )
        last_done = number
    assert compactions_seen > 0, "no compaction ran: the test checked nothing"
