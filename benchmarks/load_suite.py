"""Issue 9's and 13's devnet numbers in one command, on a fresh 4-node devnet.

    python -m benchmarks.load_suite [--json] [--attest-rate 1600] [--transfer-rate 160]
        [--duration 20] [--catchup-txs 10000] [--dir D] [--keep]
        [--phases attest,transfer,libsodium,catchup]
    python -m benchmarks.load_suite --dir D --from-snapshot SNAPSHOT [--json]
        [--catchup-path startup|live]

1. starts a fresh devnet (free 127.0.0.1 ports, a temporary directory unless
   ``--dir``) with the native multiscalar backend when it is built;
2. attests at ``--attest-rate`` for ``--duration`` s (target: ≥ 1,500
   committed tx/s, p99 ≤ 1 s);
3. two-output transfers at ``--transfer-rate`` (target: ≥ 150 tx/s, p99 ≤
   2 s), with the share of node CPU spent in the proof pool;
4. the same transfer run after restarting every node with
   ``VEIL_MSM_BACKEND=libsodium`` (issue 13: before/after on the same chain and
   machine), then back to the default backend;
5. catch-up: node 3 is SIGKILLed, ``--catchup-txs`` transfers are committed by
   the other three as fast as they go, node 3 is restarted and timed until it
   is at the tip (target: ≤ 30 s for 10,000);
6. stops the devnet (and deletes its temporary directory unless ``--keep``;
   a ``--dir`` is never deleted) and prints a table, or
   with ``--json`` one object with every run's full report.

``--from-snapshot SNAPSHOT`` repeats only the catch-up timing on a saved chain,
without proving 10,000 transfers again: ``SNAPSHOT`` is a copy of a stopped
devnet directory ``D`` (made with ``python -m devnet up --dir D``, node 3
killed, ``python -m benchmarks.load --dir D --kind transfer --count N``,
``python -m devnet down --dir D``, then ``cp -a D SNAPSHOT``); its files name
``D``'s absolute paths and ports, so it is restored to ``D`` (``--dir``,
replaced), nodes 0-2 are started, then node 3, and node 3 is timed to the
tip, with its CPU seconds (its own process, and its proof-pool workers) at
that moment. ``--catchup-path live`` times the core's state transfer instead
of the start-up catch-up on the same chain: node 3 is started first, alone,
so its start-up catch-up finds no peer (``startup_peer_wait_s``) and ends;
then nodes 0-2 are started, node 3's core learns from their relayed stable
checkpoint that it is behind and asks for state transfer, and node 3 is
timed from the start of nodes 0-2 to the tip (their own start included).

``--phases`` picks which of the four runs to do. Each phase prints its own
one-row table as it ends (to stderr with ``--json``), so a long suite that
is stopped part-way still leaves the numbers it took.

Every tx is made before its run's clock starts (``benchmarks.load``); the
proofs dominate the suite's time (tens of ms per 2×64 proof per core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.load import DEFAULT_SENDERS, LoadReport, run_load
from client.sdk import Client, RetryPolicy, VeilApiError
from devnet.load.cpu import load_average, read_cpu
from devnet.network import Devnet, open_devnet
from node.runtime import RuntimeSettings
from privacy.msm import BACKEND_ENV, available_backends

HEALTHY_TIMEOUT_S = 90.0
CATCHUP_TIMEOUT_S = 300.0
TARGETS = {
    "attest": (1500.0, 1.0),
    "transfer": (150.0, 2.0),
}
CATCHUP_TARGET_S = 30.0
PHASES = ("attest", "transfer", "libsodium", "catchup")


def free_base_port(nodes: int) -> int:
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20_000, 40_000)
        ports = [base + i for i in range(nodes)] + [base + 1000 + i for i in range(nodes)]
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range on 127.0.0.1")


def _quick(url: str) -> Client:
    return Client(url, timeout_s=3, retry=RetryPolicy(attempts=1))


def wait_healthy(devnet: Devnet, nodes: Sequence[int]) -> None:
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    pending = set(nodes)
    while pending:
        for index in sorted(pending):
            with contextlib.suppress(VeilApiError):
                if _quick(devnet.url(index)).health().ok:
                    pending.discard(index)
        if time.monotonic() > deadline:
            raise RuntimeError(f"nodes {sorted(pending)} not healthy; see {devnet.root}/nodes")
        time.sleep(0.2)


@contextlib.contextmanager
def msm_backend(name: str | None) -> Iterator[None]:
    """Nodes started inside see ``VEIL_MSM_BACKEND=name`` (None: the default)."""
    previous = os.environ.get(BACKEND_ENV)
    if name is None:
        os.environ.pop(BACKEND_ENV, None)
    else:
        os.environ[BACKEND_ENV] = name
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = previous


def restart_all(devnet: Devnet, backend: str | None) -> None:
    devnet.stop_all()
    with msm_backend(backend):
        for index in range(devnet.nodes):
            devnet.start(index)
    wait_healthy(devnet, range(devnet.nodes))


def stop_on_sigterm(devnet: Devnet, remove: Path | None) -> None:
    """SIGTERM stops the suite's nodes (and removes ``remove``) before exiting: the
    default action would leave four node processes running with nobody to stop them."""

    def handler(signum: int, frame: object) -> None:
        devnet.stop_all()
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _height(devnet: Devnet, index: int) -> int | None:
    try:
        return _quick(devnet.url(index)).status().height
    except VeilApiError:
        return None


@dataclass(frozen=True, slots=True)
class CatchUp:
    transfers: int
    committed: int
    down_blocks: int
    catchup_s: float | None
    tip_height: int


async def catch_up_run(devnet: Devnet, txs: int, senders: int, console: Console) -> CatchUp:
    """Node 3 down while ``txs`` transfers commit; seconds from its restart to the tip."""
    lagging = devnet.nodes - 1
    devnet.kill(lagging)
    before = _height(devnet, 0) or 0
    report = await run_load(
        devnet.root,
        "transfer",
        duration_s=CATCHUP_TIMEOUT_S * 4,
        rate=None,
        count=txs,
        senders=senders,
        drain_s=120.0,
        console=console,
    )
    tip = _height(devnet, 0) or 0
    console.print(f"node {lagging} restarts {tip - before} blocks behind")
    caught_up_s, _ = await time_to_tip(devnet, lagging, tip)
    return CatchUp(txs, report.committed, tip - before, caught_up_s, tip)


async def time_to_tip(devnet: Devnet, index: int, tip: int) -> tuple[float | None, Any]:
    """Start node ``index``; seconds until it reports ``tip``, and its CPU reading then."""
    started_s = time.monotonic()
    devnet.start(index)
    return await wait_for_tip(devnet, index, tip, started_s)


async def wait_for_tip(
    devnet: Devnet, index: int, tip: int, started_s: float
) -> tuple[float | None, Any]:
    """Seconds from ``started_s`` until node ``index`` reports ``tip``, and its CPU then."""
    return (await wait_for_heights(devnet, index, [tip], started_s))[tip]


async def wait_for_heights(
    devnet: Devnet, index: int, heights: Sequence[int], started_s: float
) -> dict[int, tuple[float | None, Any]]:
    """For each of ``heights``: seconds from ``started_s`` until node ``index`` first
    reported it (or more), and its CPU reading then; (None, None) if not within
    ``CATCHUP_TIMEOUT_S``."""
    reached: dict[int, tuple[float | None, Any]] = {}
    while time.monotonic() - started_s < CATCHUP_TIMEOUT_S and len(reached) < len(heights):
        height = _height(devnet, index)
        for mark in heights:
            if height is not None and height >= mark and mark not in reached:
                cpu = read_cpu([devnet.pid(index)])[0]
                reached[mark] = (time.monotonic() - started_s, cpu)
        await asyncio.sleep(0.1)
    return {mark: reached.get(mark, (None, None)) for mark in heights}


def restore_snapshot(snapshot: Path, root: Path) -> None:
    """``root`` becomes a copy of ``snapshot`` (a stopped devnet that lived at ``root``)."""
    if not (snapshot / "genesis.json").exists():
        raise SystemExit(f"{snapshot} is not a devnet directory (no genesis.json)")
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(snapshot, root, symlinks=True)
    for pid_file in root.glob("nodes/*/pid"):
        pid_file.unlink()


async def catch_up_from_snapshot(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """The catch-up timing alone, on a restored snapshot (see the module docstring)."""
    root: Path = args.dir
    restore_snapshot(args.from_snapshot, root)
    devnet = open_devnet(root)
    stop_on_sigterm(devnet, None)
    lagging = devnet.nodes - 1
    load_at_start = load_average()
    live: dict[str, Any] = {}
    try:
        if args.catchup_path == "live":
            live = await _time_live_catch_up(devnet, lagging)
            seconds, cpu, tip = live.pop("seconds"), live.pop("cpu"), live.pop("tip")
        else:
            for index in range(lagging):
                devnet.start(index)
            wait_healthy(devnet, range(lagging))
            tip = _height(devnet, 0) or 0
            seconds, cpu = await time_to_tip(devnet, lagging, tip)
    finally:
        devnet.stop_all()
    result = {
        "catchup_path": args.catchup_path,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "tip_height": tip,
        "catchup_s": seconds,
        "node_cpu_s": None if cpu is None else cpu.main_s,
        "proof_pool_cpu_s": None if cpu is None else cpu.children_s,
        **live,
    }
    console.print(
        f"node {lagging} reached height {tip} "
        + ("never" if seconds is None else f"{seconds:.1f} s after its start")
        + f"; CPU s: node {result['node_cpu_s']}, proof pool {result['proof_pool_cpu_s']}"
        + f"; load average {load_at_start} -> {result['load_average_at_end']}"
    )
    return result


async def _time_live_catch_up(devnet: Devnet, lagging: int) -> dict[str, Any]:
    """Node ``lagging`` started alone, its start-up catch-up over with no peer to ask;
    then the others: seconds from their start until it is at their tip (its core's
    state transfer), until it has its first block (the transfer began) and until it
    is at the stable checkpoint below the tip (the height the core asks for), with
    its CPU seconds at the last two."""
    devnet.start(lagging)
    deadline_s = time.monotonic() + HEALTHY_TIMEOUT_S
    while _height(devnet, lagging) is None:  # alone it is never healthy: no quorum
        if time.monotonic() > deadline_s:
            raise RuntimeError(f"node {lagging} never answered; see {devnet.root}/nodes")
        await asyncio.sleep(0.2)
    await asyncio.sleep(RuntimeSettings().startup_peer_wait_s + 1.0)
    started_s = time.monotonic()
    others = range(lagging)
    for index in others:
        devnet.start(index)
    wait_healthy(devnet, others)
    tip = _height(devnet, 0) or 0
    genesis = json.loads((devnet.root / "genesis.json").read_text(encoding="utf-8"))
    interval = int(genesis["params"]["checkpoint_interval_blocks"])
    checkpoint = tip - tip % interval
    reached = await wait_for_heights(devnet, lagging, [1, checkpoint, tip], started_s)
    at_checkpoint_s, checkpoint_cpu = reached[checkpoint]
    seconds, cpu = reached[tip]
    return {
        "tip": tip,
        "seconds": seconds,
        "cpu": cpu,
        # Its first block: the catch-up itself began (peers up, the core told).
        "first_block_s": reached[1][0],
        "checkpoint_height": checkpoint,
        "checkpoint_s": at_checkpoint_s,
        "checkpoint_node_cpu_s": None if checkpoint_cpu is None else checkpoint_cpu.main_s,
        "checkpoint_proof_pool_cpu_s": None
        if checkpoint_cpu is None
        else checkpoint_cpu.children_s,
    }


async def run_suite(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    root = args.dir or Path(tempfile.mkdtemp(prefix="veil-load-suite-")) / "devnet"
    devnet = open_devnet(root, free_base_port(4), 4)
    stop_on_sigterm(devnet, None if args.dir is not None or args.keep else root.parent)
    started_s = time.monotonic()
    phases = set(args.phases)
    results: dict[str, Any] = {
        "load_average_at_start": load_average(),
        "msm_backends": list(available_backends()),
        "devnet": str(root),
        "runs": {},
    }

    def finished(name: str, report: LoadReport) -> None:
        run = report.to_json()
        results["runs"][name] = run
        console.print(render_runs({name: run}))

    try:
        devnet.write_files()
        for index in range(devnet.nodes):
            devnet.start(index)
        wait_healthy(devnet, range(devnet.nodes))
        if "attest" in phases:
            console.rule("attests")
            finished(
                "attest",
                await run_load(root, "attest", args.duration, args.attest_rate, console=console),
            )
        transfers = functools.partial(
            run_load,
            root,
            "transfer",
            args.duration,
            args.transfer_rate,
            senders=args.senders,
            console=console,
        )
        if "transfer" in phases:
            console.rule("transfers, default backend")
            finished("transfer", await transfers())
        both = {"libsodium", "native"} <= set(available_backends())
        if "libsodium" in phases and both:
            console.rule("transfers, VEIL_MSM_BACKEND=libsodium")
            restart_all(devnet, "libsodium")
            finished("transfer_libsodium", await transfers())
            restart_all(devnet, None)
        elif "libsodium" in phases:
            console.print("libsodium comparison skipped: only one backend is available")
        if "catchup" in phases and args.catchup_txs > 0:
            console.rule(f"catch-up after {args.catchup_txs} transfers")
            catchup = await catch_up_run(devnet, args.catchup_txs, args.senders, console)
            results["catchup"] = {
                "transfers": catchup.transfers,
                "committed": catchup.committed,
                "blocks_behind": catchup.down_blocks,
                "catchup_s": catchup.catchup_s,
                "tip_height": catchup.tip_height,
            }
            console.print(render_catchup(results["catchup"]))
    finally:
        devnet.stop_all()
        if args.dir is None and not args.keep:  # only the temporary directory it made
            shutil.rmtree(root.parent, ignore_errors=True)
    results["total_s"] = time.monotonic() - started_s
    results["load_average_at_end"] = load_average()
    return results


def _proof_share(run: dict[str, Any]) -> str:
    totals = [t for t in run["cpu_s_per_node"] if t is not None]
    pools = [p for p in run["proof_pool_cpu_s_per_node"] if p is not None]
    return f"{sum(pools) / sum(totals):.0%}" if totals and sum(totals) else "-"


def _table() -> Table:
    table = Table(title="Veil devnet load suite (4 nodes)")
    for column in ("run", "committed tx/s", "p50 / p99", "node CPU/tx", "proof pool", "target"):
        table.add_column(column, justify="right")
    return table


def render_runs(runs: dict[str, dict[str, Any]], table: Table | None = None) -> Table:
    table = table if table is not None else _table()
    for name, run in runs.items():
        kind = "attest" if name == "attest" else "transfer"
        rate, p99 = TARGETS[kind]
        met = run["committed_tx_per_s"] >= rate and (run["p99_s"] or 1e9) <= p99
        table.add_row(
            name,
            f"{run['committed_tx_per_s']:.1f}",
            f"{run['p50_s'] or 0:.2f} / {run['p99_s'] or 0:.2f} s",
            f"{run['run_cpu_ms_per_tx'] or 0:.2f} ms",
            _proof_share(run),
            f"≥ {rate:g}/s, p99 ≤ {p99:g} s: {'met' if met else 'NOT met'}",
        )
    return table


def render_catchup(catchup: dict[str, Any], table: Table | None = None) -> Table:
    table = table if table is not None else _table()
    seconds = catchup["catchup_s"]
    met = seconds is not None and seconds <= CATCHUP_TARGET_S
    table.add_row(
        f"catch-up ({catchup['transfers']} transfers, {catchup['blocks_behind']} blocks)",
        "-",
        "-",
        "-",
        "-",
        f"{'timed out' if seconds is None else f'{seconds:.1f} s'} ≤ 30 s: "
        + ("met" if met else "NOT met"),
    )
    return table


def render(results: dict[str, Any], console: Console) -> None:
    table = render_runs(results.get("runs", {}))
    catchup = results.get("catchup")
    if isinstance(catchup, dict):
        render_catchup(catchup, table)
    console.print(table)
    console.print(
        f"total {results['total_s']:.0f} s; load average at start "
        f"{results['load_average_at_start']}, at end {results['load_average_at_end']}"
    )


def _phases(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PHASES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {unknown}; choose from {PHASES}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_suite")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--attest-rate", type=float, default=1600.0)
    parser.add_argument("--transfer-rate", type=float, default=160.0)
    parser.add_argument("--catchup-txs", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=DEFAULT_SENDERS, help="transfer senders")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary devnet")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--from-snapshot", type=Path, default=None, help="only time catch-up on a saved devnet"
    )
    parser.add_argument(
        "--catchup-path",
        choices=("startup", "live"),
        default="startup",
        help="with --from-snapshot: time the start-up catch-up or the core's state transfer",
    )
    parser.add_argument(
        "--phases", type=_phases, default=list(PHASES), help="comma-separated: " + ",".join(PHASES)
    )
    args = parser.parse_args(argv)
    console = Console(stderr=args.json)
    if args.from_snapshot is not None:
        if args.dir is None:
            parser.error("--from-snapshot needs --dir, the directory the snapshot was taken of")
        snapshot = asyncio.run(catch_up_from_snapshot(args, console))
        if args.json:
            print(json.dumps(snapshot))
        return 0
    results = asyncio.run(run_suite(args, console))
    if args.json:
        print(json.dumps(results))
    else:
        render(results, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
