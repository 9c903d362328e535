"""Where a batch verification's time goes: ``python -m benchmarks.batch_phases [--runs N]``.

Replays ``privacy.rangeproof.batch_verify``'s steps for one batch of valid
2×64 proofs and times each with process CPU time (the dev machine is shared,
so wall time would count waiting for a core), per proof:

- ``replay``: parsing and transcript replay (the challenges);
- ``invert``: one Montgomery batch inversion for the whole batch;
- ``build``: each proof's weighted equation (``_build``: Python scalars);
- ``vectors_merge``: the generator-scalar vectors and merging the other points
  (``combined_check_holds`` without its multiscalar call);
- ``msm``: the one multiscalar call.

It reaches into private functions on purpose: it measures their split, the
way ``batch_verify`` chains them. The minimum and median of ``runs`` batches
are printed; docs/performance.md quotes them with the revision.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from privacy import msm
from privacy import rangeproof as rp
from privacy.bench import _make_statements
from privacy.group import random_scalar

PHASES = ("replay", "invert", "build", "vectors_merge", "msm", "total")


def time_phases(statements: list[rp.RangeStatement]) -> dict[str, float]:
    """CPU seconds per phase for one batch (each phase's output feeds the next)."""
    clock = time.process_time
    start = clock()
    replayed = [(i, rp._replay(s, check_points=False)) for i, s in enumerate(statements)]
    replayed_at = clock()
    inverses = rp._batch_invert([v for _, item in replayed for v in rp._inversion_inputs(item)])
    inverted_at = clock()
    checks = []
    first = 0
    for _, item in replayed:
        last = first + len(item.challenges) + 2
        checks.append(rp._build(item, random_scalar(), inverses[first:last], check_points=False))
        first = last
    built_at = clock()
    msm_seconds = [0.0]
    original: Callable[..., bytes] = msm.multiscalar_mul

    def timed_msm(*args: Any, **kwargs: Any) -> bytes:
        begin = clock()
        try:
            return original(*args, **kwargs)
        finally:
            msm_seconds[0] += clock() - begin

    setattr(msm, "multiscalar_mul", timed_msm)  # noqa: B010 (rangeproof calls msm.multiscalar_mul)
    try:
        holds = rp.combined_check_holds(checks)
    finally:
        setattr(msm, "multiscalar_mul", original)  # noqa: B010
    done_at = clock()
    if not holds:
        raise RuntimeError("the benchmark's proofs failed batch verification")
    return {
        "replay": replayed_at - start,
        "invert": inverted_at - replayed_at,
        "build": built_at - inverted_at,
        "vectors_merge": done_at - built_at - msm_seconds[0],
        "msm": msm_seconds[0],
        "total": done_at - start,
    }


def run(batch_size: int, runs: int) -> dict[str, dict[str, float]]:
    """``{phase: {"min_us", "median_us"}}`` per proof over ``runs`` batches."""
    statements = _make_statements(batch_size, 64, 2)
    time_phases(statements)  # warm-up: the generator table is built on first use
    samples = [time_phases(statements) for _ in range(runs)]
    scale = 1e6 / batch_size
    return {
        phase: {
            "min_us": round(min(s[phase] for s in samples) * scale, 1),
            "median_us": round(statistics.median(s[phase] for s in samples) * scale, 1),
        }
        for phase in PHASES
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="batches timed")
    parser.add_argument("--batch-size", type=int, default=128, help="proofs per batch")
    args = parser.parse_args(argv)
    print(
        f"batch_verify phases, {args.batch_size} x 2x64, {msm.backend_name()} backend, "
        f"CPU us per proof over {args.runs} batches"
    )
    for phase, result in run(args.batch_size, args.runs).items():
        print(f"  {phase:<14} min {result['min_us']:>8.1f}  median {result['median_us']:>8.1f}")


if __name__ == "__main__":
    main()
