"""A probe of the cyclic garbage collector in every node a devnet starts.

    VEIL_GC_PROBE_DIR=OUT PYTHONPATH=.:benchmarks/gc_probe python -m devnet up --dir D --no-demo
    python -m benchmarks.load --dir D --kind attest --duration 20 --rate 1600 --json
    python -m devnet down --dir D        # each node writes OUT/gc-PID.json as it exits

Python imports ``sitecustomize`` at start-up from the path; the devnet's nodes
inherit the environment. Without ``VEIL_GC_PROBE_DIR`` this does nothing.
Each file holds the node's argv, its process CPU seconds, and per generation
the collections, their CPU seconds (``time.thread_time`` of the collecting
thread), the longest one and the objects collected (``gc.callbacks``).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import time
from pathlib import Path

_OUT = os.environ.get("VEIL_GC_PROBE_DIR")


class _Probe:
    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.cpu_s = [0.0, 0.0, 0.0]
        self.longest_s = [0.0, 0.0, 0.0]
        self.collected = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        generation = info["generation"]
        spent = time.thread_time() - self._started
        self.collections[generation] += 1
        self.cpu_s[generation] += spent
        self.longest_s[generation] = max(self.longest_s[generation], spent)
        self.collected[generation] += info["collected"]

    def write(self, out: Path) -> None:
        report = {
            "argv": sys.argv,
            "process_cpu_s": time.process_time(),
            "generations": [
                {
                    "collections": self.collections[g],
                    "cpu_s": round(self.cpu_s[g], 4),
                    "longest_ms": round(self.longest_s[g] * 1000, 1),
                    "collected": self.collected[g],
                }
                for g in range(3)
            ],
        }
        (out / f"gc-{os.getpid()}.json").write_text(json.dumps(report) + "\n")


if _OUT and any(arg.endswith("node.toml") for arg in sys.argv):
    _probe = _Probe()
    gc.callbacks.append(_probe)
    atexit.register(_probe.write, Path(_OUT))
