"""Micro-benchmarks of the privacy layer: medians of several runs, never asserted by tests.

Lives inside ``privacy`` (importing only ``privacy``) so that ``python -m privacy
bench`` can run it without importing ``benchmarks`` (nothing may import
``benchmarks``); ``benchmarks/privacy_bench.py`` is a thin wrapper around it.

Every measurement times ``runs`` repetitions and reports their median (and all
samples). Proof inputs are made once, before timing. Progress goes to stderr
through ``rich`` so ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from privacy import group, sigma
from privacy.generators import PEDERSEN_H
from privacy.memo import Opening, generate_memo_keypair, open_memo, seal_memo
from privacy.rangeproof import RangeStatement, batch_verify, prove_range, verify_range

Report = dict[str, Any]

_MICRO_OPS = 200
"""Operations per sample for the sub-millisecond measurements."""


def verify_terms(bits: int, parties: int) -> int:
    """Multiscalar terms of one proof's check: ``2nm + 2·log2(nm) + m + 6`` (docs/privacy.md)."""
    nm = bits * parties
    return 2 * nm + 2 * (nm.bit_length() - 1) + parties + 6


def batch_terms(bits: int, parties: int, count: int) -> int:
    """Terms of a batch of ``count`` proofs: ``2nm + 2`` shared, ``2·log2(nm) + m + 4`` each."""
    nm = bits * parties
    return 2 * nm + 2 + count * (2 * (nm.bit_length() - 1) + parties + 4)


def _time_per_op(fn: Callable[[], object], ops: int) -> float:
    """Seconds per call of ``fn``, over ``ops`` calls."""
    start = time.perf_counter()
    for _ in range(ops):
        fn()
    return (time.perf_counter() - start) / ops


def _random_values(count: int, bits: int) -> list[int]:
    return [int.from_bytes(os.urandom(8), "little") % (1 << bits) for _ in range(count)]


def _make_statements(
    count: int, bits: int, parties: int, on_each: Callable[[], object] = lambda: None
) -> list[RangeStatement]:
    statements = []
    for _ in range(count):
        blindings = [group.random_scalar() for _ in range(parties)]
        proof, commitments = prove_range(_random_values(parties, bits), blindings, bits)
        statements.append(RangeStatement(commitments, proof, bits))
        on_each()
    return statements


def run_benchmarks(*, runs: int = 5, batch_size: int = 128, progress: bool = False) -> Report:
    """Run every measurement; returns ``{"meta", "results": {name: {...}}, "model"}``.

    Units: ``us`` (microseconds) for group and sigma operations, ``ms`` otherwise.
    ``batch_verify_2x64_per_proof`` is the batch time divided by ``batch_size``.
    """
    if runs < 1 or batch_size < 1:
        raise ValueError("runs and batch_size must be positive")
    results: dict[str, dict[str, Any]] = {}
    console = Console(stderr=True)

    # Inputs, made once (proving 128 aggregated proofs takes seconds).
    scalar = group.random_scalar()
    point = group.mul(group.random_scalar(), PEDERSEN_H)
    x = group.random_scalar()
    excess = group.mul(x, PEDERSEN_H)
    message = b"veil/bench/tx-digest"
    excess_proof = sigma.prove_excess(x, message)
    memo_private, memo_public = generate_memo_keypair()
    opening = Opening(123_456, group.random_scalar(), bytes(32), b"bench")
    memo = seal_memo(opening, memo_public)
    commitment = opening.commitment()
    holder: dict[str, Any] = {}

    def setup(on_each: Callable[[], object]) -> None:
        holder["one_1x64"] = _make_statements(1, 64, 1, on_each)[0]
        holder["one_2x64"] = _make_statements(1, 64, 2, on_each)[0]
        holder["batch"] = _make_statements(batch_size, 64, 2, on_each)

    def prove_once(parties: int) -> float:
        values = _random_values(parties, 64)
        blindings = [group.random_scalar() for _ in range(parties)]
        start = time.perf_counter()
        prove_range(values, blindings, 64)
        return (time.perf_counter() - start) * 1e3

    def verify_once(key: str) -> float:
        statement = holder[key]
        start = time.perf_counter()
        verify_range(statement)
        return (time.perf_counter() - start) * 1e3

    def batch_once() -> float:
        start = time.perf_counter()
        bad = batch_verify(holder["batch"])
        elapsed = time.perf_counter() - start
        if bad:
            raise RuntimeError(f"benchmark proofs failed batch verification: {bad}")
        return elapsed * 1e3 / batch_size

    steps: list[tuple[str, str, Callable[[], float]]] = [
        (
            "scalar_mult",
            "us",
            lambda: _time_per_op(lambda: group.mul(scalar, point), _MICRO_OPS) * 1e6,
        ),
        (
            "fixed_base_mult",
            "us",
            lambda: _time_per_op(lambda: group.mul_base(scalar), _MICRO_OPS) * 1e6,
        ),
        (
            "point_add",
            "us",
            lambda: _time_per_op(lambda: group.add(point, excess), _MICRO_OPS) * 1e6,
        ),
        (
            "sigma_verify_excess",
            "us",
            lambda: (
                _time_per_op(lambda: sigma.verify_excess(excess, message, excess_proof), _MICRO_OPS)
                * 1e6
            ),
        ),
        (
            "memo_open",
            "us",
            lambda: (
                _time_per_op(lambda: open_memo(memo, memo_private, commitment), _MICRO_OPS) * 1e6
            ),
        ),
        ("prove_1x64", "ms", lambda: prove_once(1)),
        ("verify_1x64", "ms", lambda: verify_once("one_1x64")),
        ("prove_2x64", "ms", lambda: prove_once(2)),
        ("verify_2x64", "ms", lambda: verify_once("one_2x64")),
        ("batch_verify_2x64_per_proof", "ms", batch_once),
    ]

    total = len(steps) * runs + batch_size + 2
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task(f"making {batch_size + 2} proofs", total=total)
        setup(lambda: bar.advance(task))
        for name, unit, measure in steps:
            bar.update(task, description=name)
            samples = []
            for _ in range(runs):
                samples.append(measure())
                bar.advance(task)
            results[name] = {
                "median": round(statistics.median(samples), 3),
                "unit": unit,
                "samples": [round(sample, 3) for sample in samples],
            }
    return {
        "meta": {
            "runs": runs,
            "batch_size": batch_size,
            "transcript": "default",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "memo_bytes_empty_note": len(seal_memo(Opening(0, 0, bytes(32)), memo_public)),
        },
        "model": {
            "verify_1x64_terms": verify_terms(64, 1),
            "verify_2x64_terms": verify_terms(64, 2),
            "batch_2x64_terms_per_proof": round(batch_terms(64, 2, batch_size) / batch_size, 2),
            "verify_2x64_us_per_term": round(
                results["verify_2x64"]["median"] * 1e3 / verify_terms(64, 2), 1
            ),
            "batch_2x64_us_per_term": round(
                results["batch_verify_2x64_per_proof"]["median"]
                * 1e3
                * batch_size
                / batch_terms(64, 2, batch_size),
                1,
            ),
        },
        "results": results,
    }


def format_report(report: Report) -> str:
    """A plain-text table of the medians."""
    meta = report["meta"]
    lines = [
        f"privacy benchmarks: median of {meta['runs']} runs, default transcript, "
        f"batch of {meta['batch_size']}, Python {meta['python']} on {meta['cpus']} CPUs",
    ]
    for name, result in report["results"].items():
        lines.append(f"  {name:<30} {result['median']:>10.3f} {result['unit']}")
    lines.append("cost model (multiscalar terms, docs/privacy.md):")
    for name, value in report["model"].items():
        lines.append(f"  {name:<30} {value:>10}")
    return "\n".join(lines)
