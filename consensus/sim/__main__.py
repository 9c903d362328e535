"""``python -m consensus.sim``: run seeds, print a one-line JSON summary last.

Exit status 1 on any safety violation or liveness failure, after printing the
failing seed and the command that replays it with a trace.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from consensus.sim.runner import run_seed
from consensus.sim.scenario import DEFAULT_KINDS, FAULT_KINDS, PENDING_FIXES, build_scenario


def parse_faults(text: str) -> tuple[tuple[str, ...], bool]:
    """(allowed kinds, use every one of them in every seed). ``all`` leaves out the
    kinds in PENDING_FIXES (they find bugs not fixed yet); name them to run them."""
    if text == "all":
        return DEFAULT_KINDS, False
    if text == "none":
        return (), True
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise SystemExit(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    return kinds, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consensus.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--seed", type=int, help="run just this seed")
    parser.add_argument("--nodes", type=int, default=4, help="replicas (3f+1)")
    parser.add_argument(
        "--faults",
        default="all",
        help="all | none | comma-separated kinds"
        + (f" (all leaves out pending {', '.join(PENDING_FIXES)})" if PENDING_FIXES else ""),
    )
    parser.add_argument("--fault-ticks", type=int, default=300, help="ticks with faults active")
    parser.add_argument("--json", action="store_true", help="one JSON line per seed as well")
    parser.add_argument("--trace", action="store_true", help="trace every step to stderr")
    args = parser.parse_args(argv)
    allowed, every_kind = parse_faults(args.faults)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    started = time.process_time()
    wall = time.monotonic()
    summary: dict[str, object] = {}
    totals: Counter[str] = Counter()
    failures: list[str] = []
    safety = liveness = commits = view_changes = slowest_heal = 0
    for seed in seeds:
        scenario = build_scenario(seed, args.nodes, allowed, every_kind, args.fault_ticks)
        result = run_seed(scenario, trace=args.trace)
        totals.update(result.faults_injected)
        commits += result.commits
        view_changes += result.view_changes
        slowest_heal = max(slowest_heal, result.ticks - args.fault_ticks)
        if args.json:
            print(
                json.dumps(
                    {
                        "seed": seed,
                        "kinds": sorted(result.kinds),
                        "safety_violations": result.safety_violations,
                        "liveness_failure": result.liveness_failure,
                        "commits": result.commits,
                        "view_changes": result.view_changes,
                        "ticks": result.ticks,
                    }
                )
            )
        problem = None
        if result.safety_violations:
            safety += 1
            problem = "; ".join(result.safety_violations[:3])
        elif result.liveness_failure is not None:
            liveness += 1
            problem = f"liveness: {result.liveness_failure}"
        if problem is not None:
            replay = (
                f"python -m consensus.sim --seed {seed} --nodes {args.nodes} "
                f"--faults {args.faults} --fault-ticks {args.fault_ticks} --trace"
            )
            failures.append(seed_line := f"FAILED seed {seed}: {problem}")
            print(seed_line)
            print(f"replay: {replay}")
    summary = {
        "seeds": len(seeds),
        "safety_violations": safety,
        "liveness_failures": liveness,
        "commits": commits,
        "view_changes": view_changes,
        "faults_injected": dict(sorted(totals.items())),
        "max_ticks_to_heal": slowest_heal,
        "seconds": round(time.process_time() - started, 2),
        "wall_seconds": round(time.monotonic() - wall, 2),
    }
    print(json.dumps(summary), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
