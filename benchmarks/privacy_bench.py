"""Privacy micro-benchmarks: ``python benchmarks/privacy_bench.py [--json] [--runs N]``.

The measurements live in ``privacy.bench`` (so ``python -m privacy bench`` runs
the same code without importing ``benchmarks``); this script is its entry point
for the benchmarks directory. Record results with their command in
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json

from privacy.bench import format_report, run_benchmarks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--batch-size", type=int, default=128, help="proofs per batch")
    args = parser.parse_args(argv)
    report = run_benchmarks(runs=args.runs, batch_size=args.batch_size, progress=True)
    print(json.dumps(report, indent=2) if args.json else format_report(report))


if __name__ == "__main__":
    main()
