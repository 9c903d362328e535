"""The devnet load generator (issue 9, "Numbers"): committed tx/s, commit latency, node CPU.

Command line::

    python -m benchmarks.load --dir DEVNET_DIR --kind attest|transfer|mixed \\
        --duration S [--rate R] [--json] [--runs N]

A front end over ``devnet.load.run.run_load`` (the engine lives in ``devnet.load``
so that the chaos tool, ``python -m devnet chaos``, drives the same load): setup,
txs signed and proved before the clock starts, submitting for ``--duration`` s at
``--rate`` tx/s (or as fast as the nodes take them, at most ``--max-in-flight``
submitted but not committed), a drain of up to ``--drain`` s. It reports, as a
table or with ``--json`` as one object: ``committed_tx_per_s`` (txs of the run
committed during the submit window, per second of it), ``p50_s``/``p95_s``/``p99_s``
(commit latency, batch sent → block seen; an acknowledged tx still uncommitted
after the drain counts at its lower bound, and ``uncommitted`` says how many),
``rejected`` (refused at admission or rejected at execution, by reason in
``rejected_by_reason``), ``cpu_s_per_node``
(CPU seconds of each node process and its proof-pool children over the window,
from /proc), ``proof_pool_cpu_s_per_node`` (the children's share),
``cpu_ms_per_tx`` (node CPU per committed tx, averaged over the nodes) and
``server_errors`` (HTTP 5xx other than a busy 503). ``--outcomes FILE`` also writes
every acknowledged tx's outcome, for ``python -m benchmarks.load_timeline FILE``
(latency by second and by the node a tx was sent to, the longest spells
without a commit).

``--runs N`` runs it N times in a row on the same devnet, each with txs
prepared afresh, and ends with one table of the runs side by side (with
``--json``: one object per run, one per line). The chain grows from run to run,
and so does LevelDB's compaction, so the later runs show what a longer chain
costs (docs/performance.md, "LevelDB's compression").

``from benchmarks.load import run_load`` still works (re-exported).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from devnet.load.prepare import KINDS, LoadSetupError
from devnet.load.run import DEFAULT_DRAIN_S, DEFAULT_SENDERS, LoadReport, run_load
from devnet.network import DevnetError

__all__ = ["DEFAULT_SENDERS", "LoadReport", "main", "render", "run_load"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def render(report: LoadReport, console: Console) -> None:
    table = Table(title=f"{report.kind} load on {report.nodes} nodes")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rate = "as fast as possible" if report.rate is None else f"{report.rate:g} tx/s"
    rows = [
        ("offered", rate),
        ("window", f"{report.duration_s:.1f} s" + (" (txs ran out)" if report.exhausted else "")),
        ("prepared / sent", f"{report.prepared} / {report.sent}"),
        ("acknowledged", str(len(report.outcomes))),
        ("committed (in window)", f"{report.committed} ({report.committed_in_window})"),
        ("committed tx/s", f"{report.committed_tx_per_s:.1f}"),
        (
            "latency p50 / p95 / p99",
            " / ".join(_seconds(v) for v in (report.p50_s, report.p95_s, report.p99_s)),
        ),
        ("uncommitted after the drain (in the latencies at ≥)", str(report.uncommitted)),
        ("rejected", f"{report.rejected} {report.rejected_by_reason or ''}"),
        ("busy answers", str(report.busy or 0)),
        ("HTTP 5xx (not busy)", str(report.server_errors)),
        ("node CPU per committed tx (window)", _ms(report.cpu_ms_per_tx)),
        ("node CPU per committed tx (whole run)", _ms(report.run_cpu_ms_per_tx)),
        (
            "node CPU by thread (whole run, mean per node)",
            ", ".join(f"{name} {sec:.2f} s" for name, sec in report.run_cpu_s_by_thread.items())
            or "-",
        ),
        (
            "chain store: LevelDB wrote (whole run, mean per node)",
            "-" if report.store_written_mib is None else f"{report.store_written_mib:.0f} MiB",
        ),
        ("load average", " ".join(f"{x:.2f}" for x in report.load_average)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    nodes = Table(title="CPU seconds per node over the window (/proc)")
    for column in ("node", "total", "proof pool", "pool share"):
        nodes.add_column(column, justify="right")
    for index, (total, pool) in enumerate(
        zip(report.cpu_s_per_node, report.proof_pool_cpu_s_per_node, strict=True)
    ):
        share = "-" if not total or pool is None else f"{pool / total:.0%}"
        nodes.add_row(
            str(index),
            "down" if total is None else f"{total:.2f}",
            "-" if pool is None else f"{pool:.2f}",
            share,
        )
    console.print(nodes)


RUN_COLUMNS = (
    "run",
    "tx/s",
    "p50",
    "p99",
    "ms/tx",
    "loop",
    "worker",
    "LevelDB",
    "MiB",
    "busy",
    "rejected",
)
"""Short, so that the table fits 80 columns: committed tx/s, latency (s), node CPU
per committed tx, the whole run's node CPU by thread (s, mean per node), what LevelDB
wrote for the chain store (MiB, mean per node), busy answers."""


def _plain(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_rows(reports: Sequence[LoadReport]) -> list[tuple[str, ...]]:
    """One row per run for the ``--runs`` table (the columns of ``RUN_COLUMNS``)."""
    rows: list[tuple[str, ...]] = []
    for number, report in enumerate(reports, start=1):
        threads = report.run_cpu_s_by_thread
        by_thread = tuple(
            f"{threads[name]:.2f}" if name in threads else "-"
            for name in ("MainThread", "veil-worker", "native")
        )
        rows.append(
            (
                str(number),
                f"{report.committed_tx_per_s:.1f}",
                _plain(report.p50_s, 3),
                _plain(report.p99_s, 3),
                _plain(report.run_cpu_ms_per_tx, 3),
                *by_thread,
                _plain(report.store_written_mib, 0),
                str(sum(report.busy.values())),
                str(report.rejected),
            )
        )
    return rows


def render_runs(reports: Sequence[LoadReport], console: Console) -> None:
    table = Table(
        title=f"{len(reports)} runs in a row on one devnet",
        caption="p50, p99: s; loop, worker, LevelDB: CPU s per node; MiB: LevelDB writes",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in RUN_COLUMNS:
        table.add_column(column, justify="right")
    for row in run_rows(reports):
        table.add_row(*row)
    console.print(table)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--dir", type=Path, required=True, help="the devnet directory")
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--duration", type=float, required=True, help="seconds of submitting")
    parser.add_argument("--rate", type=float, default=None, help="tx/s (default: unlimited)")
    parser.add_argument("--count", type=int, default=None, help="txs to prepare")
    parser.add_argument("--senders", type=int, default=DEFAULT_SENDERS, help="transfer senders")
    parser.add_argument("--max-in-flight", type=int, default=None)
    parser.add_argument("--drain", type=float, default=DEFAULT_DRAIN_S)
    parser.add_argument("--workers", type=int, default=None, help="proving processes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--outcomes",
        type=Path,
        default=None,
        help="also write the report with every tx's outcome here (benchmarks.load_timeline)",
    )
    parser.add_argument(
        "--runs",
        type=_positive_int,
        default=1,
        help="run it this many times in a row on the same devnet (default 1)",
    )
    args = parser.parse_args(argv)
    console = Console(stderr=args.json)
    reports: list[LoadReport] = []
    for number in range(1, args.runs + 1):
        if args.runs > 1:
            console.print(f"[bold]run {number} of {args.runs}[/bold]")
        try:
            report = asyncio.run(
                run_load(
                    args.dir,
                    args.kind,
                    args.duration,
                    args.rate,
                    count=args.count,
                    senders=args.senders,
                    max_in_flight=args.max_in_flight,
                    drain_s=args.drain,
                    workers=args.workers,
                    console=console,
                )
            )
        except (LoadSetupError, DevnetError, ValueError) as exc:
            print(f"load: {exc}", file=sys.stderr)
            return 2
        reports.append(report)
        if args.json:
            print(json.dumps(report.to_json()), flush=True)
        else:
            render(report, console)
    if args.outcomes is not None:  # the last run's, when there are several
        args.outcomes.write_text(json.dumps(reports[-1].to_json(with_outcomes=True)))
    if len(reports) > 1 and not args.json:
        render_runs(reports, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
