"""What a block of bad range proofs costs a backup (issue 8 §2.2).

``python -m benchmarks.bad_block_bench [--count 64] [--parties 16] [--bits 64] [--runs 1]``

A block's statements are verified three ways: all valid, one bad (in the middle),
and all bad. Each is timed with full bisection (``batch_verify``, what the
mempool uses to attribute every fault) and with ``first_failure_only=True``
(what ``apply_block`` uses: a block is rejected by its first bad proof).

Bad proofs are what a byzantine primary makes for free: well-formed statements
whose points are random valid points and whose scalars are random, so they
parse and replay and only fail the equation. Valid ones are real proofs (made
once at start-up, about 1 s of CPU each for 16 × 64).

Prints CPU seconds (``time.process_time``, the median of ``--runs``) and the
number of combined multiscalar checks; record results with the command in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence

from privacy import group
from privacy import rangeproof as rp
from privacy.rangeproof import RangeStatement, batch_verify, proof_size, prove_range


def garbage_statement(bits: int, parties: int) -> RangeStatement:
    """A well-formed statement that does not verify: random points and scalars."""
    chunks = [group.mul_base(group.random_scalar()) for _ in range(4)]
    chunks += [group.scalar_to_bytes(group.random_scalar()) for _ in range(3)]
    rounds = (proof_size(bits, parties) // 32 - 9) // 2
    chunks += [group.mul_base(group.random_scalar()) for _ in range(2 * rounds)]
    chunks += [group.scalar_to_bytes(group.random_scalar()) for _ in range(2)]
    commitments = tuple(group.mul_base(group.random_scalar()) for _ in range(parties))
    return RangeStatement(commitments, b"".join(chunks), bits)


def valid_statement(bits: int, parties: int) -> RangeStatement:
    values = [(j * 7919) % (1 << bits) for j in range(parties)]
    proof, commitments = prove_range(values, [group.random_scalar() for _ in values], bits)
    return RangeStatement(commitments, proof, bits)


def _count_checks() -> tuple[list[int], Callable[[], None]]:
    """Count ``combined_check_holds`` calls; returns (counter, undo)."""
    real = rp.combined_check_holds
    counter = [0]

    def counting(checks: Sequence[rp.PreparedCheck]) -> bool:
        counter[0] += 1
        return real(checks)

    rp.combined_check_holds = counting

    def undo() -> None:
        rp.combined_check_holds = real

    return counter, undo


def measure(
    statements: Sequence[RangeStatement], *, first_failure_only: bool, runs: int
) -> dict[str, float]:
    times: list[float] = []
    counter, undo = _count_checks()
    try:
        for _ in range(runs):
            counter[0] = 0
            start = time.process_time()
            bad = batch_verify(statements, first_failure_only=first_failure_only)
            times.append(time.process_time() - start)
    finally:
        undo()
    return {"cpu_s": round(statistics.median(times), 3), "checks": counter[0], "bad": len(bad)}


def run(count: int, parties: int, bits: int, runs: int) -> dict[str, dict[str, float]]:
    """``{"<scenario>/<mode>": {"cpu_s", "checks", "bad"}}``."""
    valid = [valid_statement(bits, parties) for _ in range(count)]
    garbage = [garbage_statement(bits, parties) for _ in range(count)]
    one_bad = list(valid)
    one_bad[count // 2] = garbage[0]
    scenarios = {"all_valid": valid, "one_bad": one_bad, "all_bad": garbage}
    results: dict[str, dict[str, float]] = {}
    for name, statements in scenarios.items():
        for mode, first in (("full_bisection", False), ("first_failure", True)):
            results[f"{name}/{mode}"] = measure(statements, first_failure_only=first, runs=runs)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=64, help="statements in the block")
    parser.add_argument("--parties", type=int, default=16, help="values per proof")
    parser.add_argument("--bits", type=int, default=64, help="bits per value")
    parser.add_argument("--runs", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = run(args.count, args.parties, args.bits, args.runs)
    if args.json:
        meta = {"count": args.count, "parties": args.parties, "bits": args.bits, "runs": args.runs}
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return
    print(f"{args.count} statements of {args.parties} x {args.bits} bits, runs={args.runs}")
    for name, row in results.items():
        print(f"  {name:28s} {row['cpu_s']:8.3f} s CPU  {row['checks']:4.0f} combined checks")


if __name__ == "__main__":
    main()
