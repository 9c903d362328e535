"""The load generator's engine: set up, pre-generate, submit, drain, report.

``run_load`` is what ``python -m benchmarks.load`` measures with (issue 9) and what
``python -m devnet chaos`` runs while it breaks the devnet (issue 12): it lives in
``devnet`` because the dependency rule lets ``devnet`` import nothing of
``benchmarks``, and the chaos tool must drive the same load, transfers and attests.

1. Setup through the devnet's bank keys: for transfers, fresh sender accounts
   registered and funded by the banks (``devnet.load.prepare``).
2. Every tx of the run is signed, and its range proof made, before the clock
   starts, on every core (``devnet.load.txs``), with a progress bar.
3. For ``duration_s`` seconds (or until ``stop`` is set) the txs go to all nodes as
   ``POST /v1/txs:batch`` at ``rate`` tx/s, or as fast as the nodes take them (at
   most ``max_in_flight`` submitted but not committed); see ``devnet.load.drive``
   for lanes, busy answers and resubmission.
4. The run drains (up to ``drain_s``) and returns a ``LoadReport``.

Importable API::

    report = await run_load(devnet_dir, "mixed", duration_s=30, rate=200,
                            on_ack=lambda ack: ..., stop=threading.Event())

``on_ack(ack)`` is called for every tx a node acknowledged, with
``ack.tx_id`` (bytes; ``ack.tx_id_hex``), ``ack.node`` (the node index),
``ack.kind``, ``ack.submitted_at_s`` and ``ack.acked_at_s`` (``time.time()``).
``report.outcomes`` lists every acknowledged tx with its final status:
``committed`` (with ``height`` and ``latency_s``), ``rejected`` (with
``reason``), ``pending`` or ``unknown`` (no node knows it: lost before
commit). ``run_load`` needs the devnet up (``python -m devnet up``); setup
and proving run in a worker thread, so the caller's event loop keeps running.
"""

from __future__ import annotations

import asyncio
import functools
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from devnet.load.cpu import (
    CpuReading,
    load_average,
    mean_delta,
    mean_thread_cpu_delta,
    parse_store_written_bytes,
    parse_thread_cpu,
    read_cpu,
)
from devnet.load.drive import Ack, Driver, DriveStats, Lane
from devnet.load.prepare import (
    KINDS,
    Target,
    attest_lanes,
    default_workers,
    open_target,
    transfer_lanes,
)
from devnet.percentile import percentile

DEFAULT_SENDERS = 128
DEFAULT_DRAIN_S = 20.0
DEFAULT_MAX_IN_FLIGHT = 4000
"""Without a rate: txs submitted but not yet committed, at most (transfers are also
bounded by their senders: one tx in flight each)."""
PREPARED_MARGIN = 1.15
"""Txs prepared beyond ``rate × duration``, so the pool does not run dry early."""
FAST_GUESS_TX_PER_S = {"attest": 2500, "transfer": 250}
"""Txs prepared per second of a run without ``--rate`` (override with ``--count``)."""


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """An acknowledged tx and what became of it."""

    tx_id: bytes
    kind: str
    node: int
    submitted_at_s: float
    acked_at_s: float
    status: str
    """``committed``, ``rejected``, ``pending`` or ``unknown``."""
    height: int | None = None
    reason: str | None = None
    latency_s: float | None = None


@dataclass(frozen=True, slots=True)
class LoadReport:
    kind: str
    nodes: int
    duration_s: float
    """The submit window actually used (shorter if the prepared txs ran out)."""
    rate: float | None
    prepared: int
    sent: int
    outcomes: tuple[TxOutcome, ...] = field(repr=False)
    committed: int
    committed_in_window: int
    committed_tx_per_s: float
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    uncommitted: int
    """Acknowledged txs still pending or unknown after the drain: in the percentiles
    at their lower bound (the drain's end minus their submit time)."""
    rejected: int
    rejected_by_reason: dict[str, int]
    busy: dict[str, int]
    server_errors: int
    http_status: dict[int, int]
    unreachable: int
    resubmitted: int
    broken_chains: int
    exhausted: bool
    cpu_s_per_node: tuple[float | None, ...]
    proof_pool_cpu_s_per_node: tuple[float | None, ...]
    cpu_ms_per_tx: float | None
    """Node CPU (process + proof pool) per tx committed in the window, mean over the nodes."""
    run_cpu_s_per_node: tuple[float | None, ...]
    """CPU from the start of submitting until drained."""
    run_cpu_ms_per_tx: float | None
    """``run_cpu_s_per_node`` per committed tx, mean over the nodes: the load-independent
    cost figure (the window's can mislead while commits lag behind submissions)."""
    run_cpu_s_by_thread: dict[str, float]
    """The whole run's node CPU by thread (``veil_thread_cpu_seconds_total``), mean
    over the nodes: the event loop, the worker, LevelDB's compaction (``native``)."""
    store_written_mib: float | None
    """MiB LevelDB wrote for the chain store over the run (memtable flushes and
    compactions, ``veil_store_compaction_written_bytes_total``), mean over the nodes:
    what a longer chain costs in compaction. Whole MiB per level, as LevelDB counts."""
    generator_cpu_s: float
    """The generator's own process CPU in the submit window (the nodes' window)."""
    generator_prepare_cpu_s: float
    """Its own CPU preparing the txs (signing, funding); the proving workers are not in it."""
    load_average: tuple[float, float, float]

    def to_json(self, *, with_outcomes: bool = False) -> dict[str, object]:
        data = asdict(self)
        outcomes = data.pop("outcomes")
        data["http_status"] = {str(k): v for k, v in self.http_status.items()}
        if with_outcomes:
            data["outcomes"] = [o | {"tx_id": bytes(o["tx_id"]).hex()} for o in outcomes]
        return data


@dataclass(frozen=True, slots=True)
class Settled:
    outcomes: tuple[TxOutcome, ...]
    latencies: list[float]
    """Sorted; an uncommitted tx's is its lower bound."""
    uncommitted: int
    rejected_by_reason: dict[str, int]


def settle_outcomes(
    stats: DriveStats, finals: dict[bytes, tuple[str, str | None]], drained_s: float
) -> Settled:
    """Every acknowledged tx's outcome, and the commit latencies.

    A tx still pending or unknown after the drain committed, if ever, after
    ``drained_s``: it counts at that lower bound, so a stuck tx raises the
    percentiles instead of vanishing from them."""
    outcomes = []
    latencies = []
    uncommitted = 0
    rejected_reasons: Counter[str] = Counter(stats.refused)
    for tx_id, ack in stats.acked.items():
        committed_at = stats.committed_at_s.get(tx_id)
        latency: float | None = None
        if committed_at is not None:
            status, reason = "committed", None
            latency = max(0.0, committed_at - ack.submitted_at_s)
            latencies.append(latency)
        else:
            status, reason = finals.get(tx_id, ("unknown", None))
            if status == "rejected":
                rejected_reasons[reason or "REJECTED"] += 1
            elif status in {"pending", "unknown"}:
                uncommitted += 1
                latencies.append(max(0.0, drained_s - ack.submitted_at_s))
        outcomes.append(
            TxOutcome(
                tx_id,
                ack.kind,
                ack.node,
                ack.submitted_at_s,
                ack.acked_at_s,
                status,
                reason=reason,
                height=stats.committed_height.get(tx_id),
                latency_s=latency,
            )
        )
    latencies.sort()
    return Settled(tuple(outcomes), latencies, uncommitted, dict(rejected_reasons))


def prepared_count(kind: str, duration_s: float, rate: float | None) -> int:
    per_s = rate if rate is not None else FAST_GUESS_TX_PER_S.get(kind, 2500)
    return max(1, math.ceil(per_s * duration_s * PREPARED_MARGIN))


def build_lanes(
    target: Target,
    kind: str,
    count: int,
    *,
    senders: int,
    workers: int,
    console: Console,
    transfers: int | None = None,
) -> list[Lane]:
    """The run's txs, pre-generated (blocking: proofs take seconds to minutes). ``mixed``:
    ``transfers`` of the ``count`` are transfers (default a tenth, at least one per sender)."""
    if kind == "attest":
        return attest_lanes(target, count, workers, console)
    if kind == "transfer":
        return transfer_lanes(target, count, senders, workers, console)
    # Their proofs dominate the preparation; attests cost next to nothing.
    transfers = max(senders, count // 10 if transfers is None else transfers)
    return transfer_lanes(target, transfers, senders, workers, console) + attest_lanes(
        target, count - transfers, workers, console
    )


def _diff_cpu(
    before: list[CpuReading | None], after: list[CpuReading | None]
) -> list[CpuReading | None]:
    return [
        a.minus(b) if a is not None and b is not None else None
        for b, a in zip(before, after, strict=True)
    ]


async def run_load(
    devnet_dir: Path,
    kind: str,
    duration_s: float,
    rate: float | None = None,
    *,
    on_ack: Callable[[Ack], None] | None = None,
    stop: threading.Event | None = None,
    count: int | None = None,
    transfers: int | None = None,
    senders: int = DEFAULT_SENDERS,
    max_in_flight: int | None = None,
    drain_s: float = DEFAULT_DRAIN_S,
    workers: int | None = None,
    console: Console | None = None,
) -> LoadReport:
    """Set up, pre-generate (``count`` txs, of which ``transfers`` for ``mixed``), submit
    for ``duration_s`` (less if ``stop`` is set, from any thread), drain, report; see the
    module docstring."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if duration_s <= 0 or (rate is not None and rate <= 0):
        raise ValueError("duration and rate must be positive")
    console = console if console is not None else Console(stderr=True, quiet=True)
    workers = workers or default_workers()
    target = await asyncio.to_thread(open_target, Path(devnet_dir))
    total = count if count is not None else prepared_count(kind, duration_s, rate)
    prepare_cpu_start = time.process_time()
    lanes = await asyncio.to_thread(
        functools.partial(
            build_lanes,
            target,
            kind,
            total,
            senders=senders,
            workers=workers,
            console=console,
            transfers=transfers,
        )
    )
    prepared = sum(len(lane.txs) for lane in lanes)
    in_flight = max_in_flight if max_in_flight is not None else DEFAULT_MAX_IN_FLIGHT
    driver = Driver(
        target.urls, target.chain.chain_id, lanes, rate=rate, max_in_flight=in_flight, on_ack=on_ack
    )
    await driver.start()
    follower = asyncio.get_running_loop().create_task(driver.follow_commits())
    try:
        pids = target.pids
        metrics_before = await driver.scrape_metrics()
        cpu_before = read_cpu(pids)
        started_s = time.time()
        generator_cpu_start = time.process_time()
        generator_prepare_cpu_s = generator_cpu_start - prepare_cpu_start
        console.print(f"submitting {prepared} {kind} txs for {duration_s:g} s")
        await driver.submit_for(duration_s, stop)
        ended_s = time.time()
        generator_cpu_s = time.process_time() - generator_cpu_start
        cpu_window = _diff_cpu(cpu_before, read_cpu(pids))
        loadavg = load_average()
        await driver.drain(drain_s)
        drained_s = time.time()
        cpu_run = _diff_cpu(cpu_before, read_cpu(pids))
        metrics_after = await driver.scrape_metrics()
        run_by_thread = mean_thread_cpu_delta(
            [parse_thread_cpu(t) if t is not None else None for t in metrics_before],
            [parse_thread_cpu(t) if t is not None else None for t in metrics_after],
        )
        store_written = mean_delta(
            [parse_store_written_bytes(t) if t is not None else None for t in metrics_before],
            [parse_store_written_bytes(t) if t is not None else None for t in metrics_after],
        )
        stats = driver.stats
        unresolved = [t for t in stats.acked if t not in stats.committed_at_s]
        finals = await driver.final_statuses(unresolved)
    finally:
        follower.cancel()
        await driver.close()
    window_s = max(1e-9, ended_s - started_s)
    settled = settle_outcomes(stats, finals, drained_s)
    latencies = settled.latencies
    in_window = sum(1 for t in stats.committed_at_s.values() if started_s <= t <= ended_s)
    node_totals = [r.total_s if r is not None else None for r in cpu_window]
    known = [t for t in node_totals if t is not None]
    cpu_ms_per_tx = statistics.fmean(known) / in_window * 1000 if known and in_window else None
    run_known = [r.total_s for r in cpu_run if r is not None]
    committed = len(stats.committed_at_s)
    run_cpu_ms_per_tx = (
        statistics.fmean(run_known) / committed * 1000 if run_known and committed else None
    )
    return LoadReport(
        kind=kind,
        nodes=len(target.urls),
        duration_s=window_s,
        rate=rate,
        prepared=prepared,
        sent=stats.sent,
        outcomes=settled.outcomes,
        committed=committed,
        committed_in_window=in_window,
        committed_tx_per_s=in_window / window_s,
        p50_s=percentile(latencies, 0.50),
        p95_s=percentile(latencies, 0.95),
        p99_s=percentile(latencies, 0.99),
        uncommitted=settled.uncommitted,
        rejected=sum(settled.rejected_by_reason.values()),
        rejected_by_reason=settled.rejected_by_reason,
        busy=dict(stats.busy),
        server_errors=stats.server_errors,
        http_status=dict(stats.http_status),
        unreachable=stats.unreachable,
        resubmitted=stats.resubmitted,
        broken_chains=stats.broken_chains,
        exhausted=driver.exhausted,
        cpu_s_per_node=tuple(node_totals),
        proof_pool_cpu_s_per_node=tuple(
            r.children_s if r is not None else None for r in cpu_window
        ),
        cpu_ms_per_tx=cpu_ms_per_tx,
        run_cpu_s_per_node=tuple(r.total_s if r is not None else None for r in cpu_run),
        run_cpu_ms_per_tx=run_cpu_ms_per_tx,
        run_cpu_s_by_thread=run_by_thread,
        store_written_mib=None if store_written is None else store_written / (1 << 20),
        generator_cpu_s=generator_cpu_s,
        generator_prepare_cpu_s=generator_prepare_cpu_s,
        load_average=loadavg,
    )
