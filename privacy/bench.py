"""Micro-benchmarks of the privacy layer: medians of several runs, never asserted by tests.

Lives inside ``privacy`` (importing only ``privacy``) so that ``python -m privacy
bench`` can run it without importing ``benchmarks`` (nothing may import
``benchmarks``); ``benchmarks/privacy_bench.py`` is a thin wrapper around it.

Every measurement times ``runs`` repetitions and reports their median (and all
samples). Proof inputs are made once, before timing. Progress goes to stderr
through ``rich`` so ``--json`` output on stdout stays clean.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from privacy import group, msm, sigma
from privacy.excess_batch import batch_verify_excess
from privacy.generators import PEDERSEN_H
from privacy.memo import Opening, generate_memo_keypair, open_memo, seal_memo
from privacy.rangeproof import RangeStatement, batch_verify, prove_range, verify_range
from privacy.sigma import ExcessCheck

Report = dict[str, Any]
Step = tuple[str, str, Callable[[], object], int, int]
"""(name, unit, operation, calls per sample, divisor): a sample is the time of
``calls`` calls divided by ``calls × divisor``."""

VERIFY_STEPS = (
    "msm_278_per_term",
    "msm_2818_per_term",
    "sigma_verify_excess",
    "excess_batch_16_per_proof",
    "verify_1x64",
    "verify_2x64",
    "batch_verify_2x64_per_proof",
)
"""Measurements that depend on the multiscalar backend: timed again with every other one."""

_MICRO_OPS = 200
"""Operations per sample for the sub-millisecond measurements."""
EXCESS_BATCH = 16
"""About a proof batch's size at 150 transfers/s (docs/performance.md)."""


def verify_terms(bits: int, parties: int) -> int:
    """Multiscalar terms of one proof's check: ``2nm + 2·log2(nm) + m + 6`` (docs/privacy.md)."""
    nm = bits * parties
    return 2 * nm + 2 * (nm.bit_length() - 1) + parties + 6


def batch_terms(bits: int, parties: int, count: int) -> int:
    """Terms of a batch of ``count`` proofs: ``2nm + 2`` shared, ``2·log2(nm) + m + 4`` each."""
    nm = bits * parties
    return 2 * nm + 2 + count * (2 * (nm.bit_length() - 1) + parties + 4)


_UNIT_SCALE = {"us": 1e6, "ms": 1e3}


def _time_calls(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """Wall-clock and process CPU seconds for ``calls`` calls of ``fn``.

    CPU time is reported next to wall time because the 2-core dev machine is
    shared: under load, wall time includes waiting for a core, CPU time does not.
    """
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return time.perf_counter() - wall_start, time.process_time() - cpu_start


def _random_values(count: int, bits: int) -> list[int]:
    return [int.from_bytes(os.urandom(8), "little") % (1 << bits) for _ in range(count)]


def _make_statements(
    count: int,
    bits: int,
    parties: int,
    on_each: Callable[[], object] = lambda: None,
    transcript: str = "default",
) -> list[RangeStatement]:
    statements = []
    for _ in range(count):
        blindings = [group.random_scalar() for _ in range(parties)]
        values = _random_values(parties, bits)
        proof, commitments = prove_range(values, blindings, bits, transcript=transcript)
        statements.append(RangeStatement(commitments, proof, bits, transcript=transcript))
        on_each()
    return statements


def _excess_checks(count: int) -> list[ExcessCheck]:
    checks = []
    for _ in range(count):
        x = group.random_scalar()
        message = os.urandom(32)
        checks.append(
            ExcessCheck(group.mul(x, PEDERSEN_H), message, sigma.prove_excess(x, message))
        )
    return checks


def run_benchmarks(*, runs: int = 5, batch_size: int = 128, progress: bool = False) -> Report:
    """Run every measurement; returns ``{"meta", "results": {name: {...}}, "model"}``.

    Units: ``us`` (microseconds) for group and sigma operations, ``ms`` otherwise.
    ``median`` is wall-clock time, ``cpu_median`` process CPU time (the same on an
    idle machine). ``batch_verify_2x64_per_proof`` is the batch time divided by
    ``batch_size``.
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
    # Distinct points, decoded on every call (no fixed table), as a verifier's own points are.
    msm_points = [group.hash_to_point(os.urandom(64)) for _ in range(batch_terms(64, 2, 128))]
    msm_scalars = [group.random_scalar() for _ in msm_points]
    small = verify_terms(64, 2)

    def setup(on_each: Callable[[], object]) -> None:
        holder["one_1x64"] = _make_statements(1, 64, 1, on_each)[0]
        holder["one_2x64"] = _make_statements(1, 64, 2, on_each)[0]
        # Merlin is for dalek interop; its pure-Python Keccak is the cost shown here.
        holder["merlin_2x64"] = _make_statements(1, 64, 2, on_each, transcript="merlin")[0]
        holder["batch"] = _make_statements(batch_size, 64, 2, on_each)

    inputs_1 = (_random_values(1, 64), [group.random_scalar()])
    inputs_2 = (_random_values(2, 64), [group.random_scalar() for _ in range(2)])

    # A batch remembers its answers: each call takes proofs it has not seen.
    excess_sets = [_excess_checks(EXCESS_BATCH) for _ in range((runs + 1) * 2)]

    def excess_batch_once() -> None:
        checks = excess_sets.pop() if excess_sets else _excess_checks(EXCESS_BATCH)
        if batch_verify_excess(checks):
            raise RuntimeError("benchmark excess proofs failed batch verification")

    def batch_once() -> None:
        bad = batch_verify(holder["batch"])
        if bad:
            raise RuntimeError(f"benchmark proofs failed batch verification: {bad}")

    steps: list[Step] = [
        (
            "msm_278_per_term",
            "us",
            lambda: msm.multiscalar_mul(msm_scalars[:small], msm_points[:small]),
            1,
            small,
        ),
        (
            "msm_2818_per_term",
            "us",
            lambda: msm.multiscalar_mul(msm_scalars, msm_points),
            1,
            len(msm_points),
        ),
        ("scalar_mult", "us", lambda: group.mul(scalar, point), _MICRO_OPS, 1),
        ("fixed_base_mult", "us", lambda: group.mul_base(scalar), _MICRO_OPS, 1),
        ("point_add", "us", lambda: group.add(point, excess), _MICRO_OPS, 1),
        (
            "sigma_verify_excess",
            "us",
            # check_excess, not verify_excess: that one remembers its answer.
            lambda: sigma.check_excess(excess, message, excess_proof),
            _MICRO_OPS,
            1,
        ),
        ("excess_batch_16_per_proof", "us", excess_batch_once, 1, EXCESS_BATCH),
        ("memo_open", "us", lambda: open_memo(memo, memo_private, commitment), _MICRO_OPS, 1),
        ("prove_1x64", "ms", lambda: prove_range(*inputs_1, 64), 1, 1),
        ("verify_1x64", "ms", lambda: verify_range(holder["one_1x64"]), 1, 1),
        ("prove_2x64", "ms", lambda: prove_range(*inputs_2, 64), 1, 1),
        ("verify_2x64", "ms", lambda: verify_range(holder["one_2x64"]), 1, 1),
        ("verify_2x64_merlin", "ms", lambda: verify_range(holder["merlin_2x64"]), 1, 1),
        ("batch_verify_2x64_per_proof", "ms", batch_once, 1, batch_size),
    ]

    others = [name for name in msm.available_backends() if name != msm.backend_name()]
    backend_steps = sum(step[0] in VERIFY_STEPS for step in steps)
    total = (len(steps) + len(others) * backend_steps) * runs + batch_size + 3
    compare: dict[str, dict[str, dict[str, Any]]] = {}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task(f"making {batch_size + 3} proofs", total=total)
        setup(lambda: bar.advance(task))
        for step in steps:
            bar.update(task, description=step[0])
            # Backend-dependent steps alternate backends sample by sample, so a
            # change in the machine's load hits both alike (the ratios are the point).
            backends = [msm.backend_name(), *others] if step[0] in VERIFY_STEPS else []
            measured = _measure(step, runs, lambda: bar.advance(task), backends)
            results[step[0]] = measured.pop(msm.backend_name() if backends else "")
            for other, result in measured.items():
                compare.setdefault(other, {})[step[0]] = result
    return {
        "meta": {
            "backend": msm.backend_name(),
            "native_unavailable": msm.native_unavailable_reason(),
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
        "compare": compare,
    }


def _measure(
    step: Step, runs: int, on_run: Callable[[], object], backends: list[str]
) -> dict[str, dict[str, Any]]:
    """Median wall and CPU time of ``runs`` samples of ``step`` (see ``Step``) with each
    of ``backends`` in turn, sample by sample (key ``""``: the current backend only),
    after one untimed call with each."""
    _, unit, operation, calls, divisor = step
    scale = _UNIT_SCALE[unit] / (calls * divisor)
    names = backends or [""]
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: a backend's fixed tables are built on first use
        with msm.use_backend(name) if name else contextlib.nullcontext():
            operation()
    for _ in range(runs):
        for name in names:
            with msm.use_backend(name) if name else contextlib.nullcontext():
                wall_s, cpu_s = _time_calls(operation, calls)
            wall[name].append(wall_s * scale)
            cpu[name].append(cpu_s * scale)
            on_run()
    return {
        name: {
            "median": round(statistics.median(wall[name]), 3),
            "cpu_median": round(statistics.median(cpu[name]), 3),
            "unit": unit,
            "samples": [round(sample, 3) for sample in wall[name]],
        }
        for name in names
    }


def format_report(report: Report) -> str:
    """A plain-text table of the medians."""
    meta = report["meta"]
    lines = [
        f"privacy benchmarks: median of {meta['runs']} runs, default transcript, "
        f"batch of {meta['batch_size']}, Python {meta['python']} on {meta['cpus']} CPUs",
        f"multiscalar backend: {meta['backend']}"
        + (
            f" (native unavailable: {meta['native_unavailable']})"
            if meta["native_unavailable"]
            else ""
        ),
    ]
    lines.append(f"  {'measurement':<30} {'wall':>10} {'cpu':>10}")
    for name, result in report["results"].items():
        lines.append(
            f"  {name:<30} {result['median']:>10.3f} {result['cpu_median']:>10.3f} {result['unit']}"
        )
    for other, results in report["compare"].items():
        lines.append(
            f"the same with the {other} backend, samples alternating with the "
            f"{meta['backend']} ones (ratio of CPU medians):"
        )
        for name, result in results.items():
            base = report["results"][name]["cpu_median"]
            lines.append(
                f"  {name:<30} {result['median']:>10.3f} {result['cpu_median']:>10.3f} "
                f"{result['unit']}  ({result['cpu_median'] / base:.1f}x {meta['backend']})"
            )
    lines.append(f"cost model (multiscalar terms, docs/privacy.md; {meta['backend']} backend):")
    for name, value in report["model"].items():
        lines.append(f"  {name:<30} {value:>10}")
    return "\n".join(lines)
