"""benchmarks/gc_probe: a process started with the probe on its path reports its collections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "gc_probe"

MAKE_CYCLES = """
import gc
class Cyclic:
    def __init__(self):
        self.me = self
for _ in range(500):
    Cyclic()
gc.collect()
"""


def _run(tmp_path: Path, *argv: str, probe_dir: Path | None) -> None:
    env = dict(os.environ, PYTHONPATH=str(PROBE_DIR))
    env.pop("VEIL_GC_PROBE_DIR", None)
    if probe_dir is not None:
        env["VEIL_GC_PROBE_DIR"] = str(probe_dir)
    subprocess.run([sys.executable, "-c", MAKE_CYCLES, *argv], env=env, check=True, cwd=tmp_path)


def test_a_node_process_reports_each_generation(tmp_path: Path) -> None:
    _run(tmp_path, "run", "--config", "nodes/0/node.toml", probe_dir=tmp_path)
    (report_file,) = tmp_path.glob("gc-*.json")
    report = json.loads(report_file.read_text())
    assert report["argv"][-1] == "nodes/0/node.toml"
    generations = report["generations"]
    assert generations[2]["collections"] >= 1  # the explicit one at least
    assert sum(g["collected"] for g in generations) >= 500  # every cycle, whichever found it
    assert all(g["cpu_s"] >= 0 and g["longest_ms"] >= 0 for g in generations)


def test_nothing_is_written_without_the_variable_or_for_other_processes(tmp_path: Path) -> None:
    _run(tmp_path, "run", "--config", "nodes/0/node.toml", probe_dir=None)
    _run(tmp_path, "not-a-node", probe_dir=tmp_path)
    assert list(tmp_path.glob("gc-*.json")) == []
