"""``make soak``: the long simulator runs, one JSON summary per run.

5000 seeds at n = 4 and at n = 7 with ``--faults all``, then every harsh
combination on its own seed range. Exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import sys

from consensus.sim.__main__ import main as simulate
from consensus.sim.scenario import HARSH_COMBINATIONS, PENDING_FIXES

HARSH_START = 300_000
"""First seed of the harsh runs; each combination gets its own range above it."""


def soak_runs(seeds: int, harsh_seeds: int) -> list[list[str]]:
    runs = [["--seeds", str(seeds), "--nodes", str(nodes)] for nodes in (4, 7)]
    for number, kinds in enumerate(HARSH_COMBINATIONS):
        if any(kind in PENDING_FIXES for kind in kinds):
            continue
        start = HARSH_START + number * 10_000
        runs.append(
            ["--seeds", str(harsh_seeds), "--start", str(start), "--faults", ",".join(kinds)]
        )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consensus.sim.soak", description=__doc__)
    parser.add_argument("--seeds", type=int, default=5000, help="seeds per --faults all run")
    parser.add_argument("--harsh-seeds", type=int, default=200, help="seeds per combination")
    args = parser.parse_args(argv)
    for kinds in HARSH_COMBINATIONS:
        pending = [kind for kind in kinds if kind in PENDING_FIXES]
        if pending:
            print(f"# skipped {','.join(kinds)}: pending fixes for {','.join(pending)}")
    failed = 0
    for run in soak_runs(args.seeds, args.harsh_seeds):
        print("# python -m consensus.sim " + " ".join(run), flush=True)
        failed += simulate(run) != 0
    print(f"# soak: {failed} failed runs", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
