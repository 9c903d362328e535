"""``python -m devnet``: up, status, down, kill, start, logs, demo (issue 10)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from client.sdk import Client, RetryPolicy, VeilApiError
from devnet import netns as netns_tools
from devnet.chaos import (
    DEFAULT_RATE_TX_PER_S,
    DEFAULT_RECOVERY_BOUND_S,
    ChaosResult,
    run_chaos,
)
from devnet.chaos_faults import ChaosError
from devnet.chaos_scenarios import SCENARIOS
from devnet.demo import run_demo
from devnet.netns import NetnsError, NetnsLayout
from devnet.network import (
    ALLOWED_NODE_COUNTS,
    DEFAULT_BASE_PORT,
    DEFAULT_DIR,
    Devnet,
    DevnetError,
    open_devnet,
)

HEALTH_TIMEOUT_S = 60.0
dir_option = click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
)


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _quick(url: str) -> Client:
    return Client(url, timeout_s=2, retry=RetryPolicy(attempts=1))


def _wait_healthy(devnet: Devnet, console: Console) -> None:
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("waiting for the nodes to be healthy", total=devnet.nodes)
        pending = set(range(devnet.nodes))
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while pending:
            for index in sorted(pending):
                if devnet.pid(index) is None:
                    raise _fail(f"node {index} exited; see {devnet.log_file(index)}")
                try:
                    if _quick(devnet.url(index)).health().ok:
                        pending.discard(index)
                        progress.advance(task)
                except VeilApiError:
                    pass
            if time.monotonic() > deadline:
                raise _fail(f"nodes {sorted(pending)} not healthy after {HEALTH_TIMEOUT_S:g} s")
            time.sleep(0.2)


def _banner(devnet: Devnet, console: Console) -> None:
    console.rule("[bold green]devnet ready")
    for index in range(devnet.nodes):
        try:
            status = _quick(devnet.url(index)).status()
            where = f"height {status.height}, view {status.view}"
        except VeilApiError as exc:
            where = exc.code
        console.print(f"  node {index}  {devnet.url(index)}  ({where})")
        console.print(f"          explorer {devnet.url(index)}/explorer/")
    console.print(f"  data and logs: {devnet.root / 'nodes'}/N/  (node.log)")
    console.print("  try:")
    for command in (
        f"veil --node {devnet.url(0)} chain status",
        f"veil wallet balance --wallet {devnet.client_dir('firm-y')}",
        f"veil audit --wallet {devnet.regulator_dir}",
        f"python -m devnet status --dir {devnet.root}",
        f"python -m devnet down --dir {devnet.root}",
    ):
        console.print(f"    {command}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def devnet_cli() -> None:
    """A local Veil network of 4 (7, 10) validator processes on 127.0.0.1."""


@devnet_cli.command()
@dir_option
@click.option(
    "--base-port", type=click.IntRange(1024, 60000), default=DEFAULT_BASE_PORT, show_default=True
)
@click.option("--nodes", type=click.Choice([str(n) for n in ALLOWED_NODE_COUNTS]), default="4")
@click.option("--no-demo", is_flag=True)
@click.option(
    "--netns",
    is_flag=True,
    help="Each node in its own network namespace on a bridge (root and iproute2).",
)
def up(root: Path, base_port: int, nodes: str, no_demo: bool, netns: bool) -> None:
    """Write keys, genesis and node.toml (keeping existing ones), start the nodes, run the demo."""
    console = Console()
    started = time.monotonic()
    try:
        devnet = _open_for_up(root, base_port, int(nodes), netns)
        if devnet.running():
            raise _fail(
                f"a devnet is already running in {root} (nodes {devnet.running()}); "
                f"stop it with `python -m devnet down --dir {root}`"
            )
        layout = devnet.netns_layout
        if layout is not None:
            netns_tools.create(root, layout)
            console.print(
                f"namespaces {layout.namespace(0)}..{layout.nodes - 1} on {layout.bridge}"
            )
        devnet.write_files()
        for index in range(devnet.nodes):
            devnet.start(index)
        _wait_healthy(devnet, console)
        console.print(
            f"[green]{devnet.nodes} nodes healthy[/] after {time.monotonic() - started:.1f} s"
        )
        if not no_demo:
            run_demo(devnet, console)
        _banner(devnet, console)
        console.print(f"devnet ready in {time.monotonic() - started:.1f} s")
    except (DevnetError, NetnsError, VeilApiError, ValueError) as exc:
        raise _fail(str(exc)) from None


def _open_for_up(root: Path, base_port: int, nodes: int, netns: bool) -> Devnet:
    """The devnet to bring up; ``--netns`` must match how its genesis was made."""
    if netns:
        netns_tools.require_netns_tools()
    devnet = open_devnet(root, base_port, nodes)
    made = (root / "genesis.json").exists()
    if made and netns != bool(devnet.hosts):
        how = "with" if devnet.hosts else "without"
        raise DevnetError(
            f"the devnet in {root} was made {how} --netns; run `up` the same way, "
            "or `down --purge` to start a different network"
        )
    if netns and not made:
        root.mkdir(parents=True, exist_ok=True)
        layout = NetnsLayout(
            netns_tools.devnet_prefix(root), netns_tools.free_subnet_octet(root), nodes
        )
        devnet = Devnet(root, nodes, base_port, tuple(layout.address(i) for i in range(nodes)))
    return devnet


@devnet_cli.command()
@dir_option
@click.option("--json", "json_output", is_flag=True)
def status(root: Path, json_output: bool) -> None:
    """Per node: index, pid, url, height, view, state_root, peers."""
    try:
        devnet = open_devnet(root)
    except DevnetError as exc:
        raise _fail(str(exc)) from None
    rows: list[dict[str, object]] = []
    for index in range(devnet.nodes):
        row: dict[str, object] = {
            "index": index,
            "pid": devnet.pid(index),
            "url": devnet.url(index),
            "height": None,
            "view": None,
            "state_root": None,
            "peers": None,
        }
        if row["pid"] is not None:
            try:
                node = _quick(devnet.url(index)).status()
                row.update(
                    height=node.height,
                    view=node.view,
                    state_root=node.state_root.hex(),
                    peers=sum(p.connected for p in node.peers),
                )
            except VeilApiError:
                pass
        rows.append(row)
    if json_output:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "down" if row["pid"] is None else f"pid {row['pid']}"
        click.echo(
            f"node {row['index']}  {row['url']}  {state}  height {row['height']}  "
            f"view {row['view']}  peers {row['peers']}"
        )


@devnet_cli.command()
@dir_option
@click.option("--purge", is_flag=True, help="Also delete the devnet directory.")
def down(root: Path, purge: bool) -> None:
    """SIGTERM every node, SIGKILL after a timeout, remove the namespaces ``up --netns``
    made (even after a crash); --purge deletes the directory."""
    if not root.exists():
        raise _fail(f"no devnet in {root}")
    try:
        open_devnet(root).stop_all()
    except DevnetError as exc:
        if not purge:
            raise _fail(str(exc)) from None
    try:
        removed = netns_tools.destroy(root)
    except NetnsError as exc:
        raise _fail(str(exc)) from None
    if removed:
        click.echo(f"removed {len(removed)} namespaces and links: {' '.join(removed)}")
    if purge:
        shutil.rmtree(root)
    click.echo("devnet stopped" + (f"; {root} deleted" if purge else ""))


@devnet_cli.command()
@dir_option
@click.argument("index", type=int)
def kill(root: Path, index: int) -> None:
    """SIGKILL node INDEX."""
    try:
        open_devnet(root).kill(index)
    except DevnetError as exc:
        raise _fail(str(exc)) from None
    click.echo(f"node {index} killed")


@devnet_cli.command()
@dir_option
@click.argument("index", type=int)
def start(root: Path, index: int) -> None:
    """Restart node INDEX."""
    try:
        pid = open_devnet(root).start(index)
    except DevnetError as exc:
        raise _fail(str(exc)) from None
    click.echo(f"node {index} started (pid {pid})")


@devnet_cli.command()
@dir_option
@click.argument("index", type=int)
@click.option("--follow", "-f", is_flag=True)
def logs(root: Path, index: int, follow: bool) -> None:
    """Print node INDEX's log (--follow keeps printing)."""
    log = open_devnet(root).log_file(index)
    if not log.exists():
        raise _fail(f"no log for node {index} in {root}")
    with log.open("rb") as handle:
        click.echo(handle.read().decode("utf-8", "replace"), nl=False)
        while follow:  # until Ctrl-C
            chunk = handle.read()
            if chunk:
                click.echo(chunk.decode("utf-8", "replace"), nl=False)
            else:
                time.sleep(0.25)


@devnet_cli.command()
@dir_option
def demo(root: Path) -> None:
    """Rerun the demo; exits non-zero if any step fails."""
    try:
        run_demo(open_devnet(root), Console())
    except (DevnetError, VeilApiError, ValueError) as exc:
        raise _fail(str(exc)) from None


@devnet_cli.command()
@dir_option
@click.option("--scenario", required=True, type=click.Choice(sorted(SCENARIOS)))
@click.option("--duration", "duration_s", type=click.FloatRange(4, None), default=60.0)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--rate",
    "rate_tx_per_s",
    type=click.FloatRange(0.5, None),
    default=DEFAULT_RATE_TX_PER_S,
    show_default=True,
    help="txs per second offered in all (transfers and attests)",
)
@click.option(
    "--recovery-bound",
    "recovery_bound_s",
    type=click.FloatRange(0.1, None),
    default=DEFAULT_RECOVERY_BOUND_S,
    show_default=True,
    help="seconds a heal may take to show progress",
)
@click.option(
    "--rounds",
    "max_rounds",
    type=click.IntRange(1, None),
    default=None,
    help="stop after this many rounds (or the duration, whichever comes first)",
)
@click.option(
    "--transfers",
    type=click.IntRange(1, None),
    default=None,
    help="transfers to commit in the fault phase (catch-up: the node stays cut off until then)",
)
@click.option("--json", "json_output", is_flag=True)
def chaos(  # noqa: PLR0917 - one parameter per click option
    root: Path,
    scenario: str,
    duration_s: float,
    seed: int,
    rate_tx_per_s: float,
    recovery_bound_s: float,
    max_rounds: int | None,
    transfers: int | None,
    json_output: bool,
) -> None:
    """Break the running devnet in rounds under load; check no fork, no lost commit,
    convergence and bounded recovery. Exits 1 on a violation (with the replay command)."""
    try:
        devnet = open_devnet(root)
        result = run_chaos(
            devnet,
            scenario,
            duration_s,
            seed,
            rate_tx_per_s=rate_tx_per_s,
            recovery_bound_s=recovery_bound_s,
            max_rounds=max_rounds,
            transfers=transfers,
            say=_progress,
        )
    except (DevnetError, NetnsError, ChaosError, VeilApiError) as exc:
        raise _fail(f"chaos {scenario} (seed {seed}): {exc}") from None
    if json_output:
        click.echo(json.dumps(result.as_json()))
    else:
        _print_chaos(result)
    if not result.ok:
        replay = f"--scenario {scenario} --duration {duration_s:g} --seed {seed}"
        replay += f" --rate {rate_tx_per_s:g} --recovery-bound {recovery_bound_s:g}"
        replay += f" --rounds {max_rounds}" if max_rounds is not None else ""
        replay += f" --transfers {transfers}" if transfers is not None else ""
        click.echo(
            f"VIOLATION in scenario {scenario}, seed {seed}: replay with "
            f"`python -m devnet chaos --dir {root} {replay}`",
            err=True,
        )
        raise SystemExit(1)


def _progress(line: str) -> None:
    """A timestamped progress line on stderr (stdout carries the result, or its JSON)."""
    click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)


def _print_chaos(result: ChaosResult) -> None:
    table = Table(title=f"chaos {result.scenario}, seed {result.seed}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("rounds", result.rounds),
        ("txs acknowledged", result.acknowledged),
        ("acknowledged and committed", result.committed),
        ("  acknowledged by kind", json.dumps(result.acknowledged_by_kind)),
        ("  committed by kind", json.dumps(result.committed_by_kind)),
        ("acknowledged, never committed", result.uncommitted),
        ("  their final status", json.dumps(result.uncommitted_statuses)),
        ("lost commits", result.lost),
        ("forks", result.forks),
        ("converged", result.converged),
        ("recovery p50 / p99 (s)", f"{result.recovery_s_p50} / {result.recovery_s_p99}"),
        (
            "baseline tx/s, p99 (s)",
            f"{result.baseline.committed_tx_per_s}, {result.baseline.latency_s_p99}",
        ),
        (
            "under faults tx/s, p99 (s)",
            f"{result.faulted.committed_tx_per_s}, {result.faulted.latency_s_p99}",
        ),
    ]
    if result.honest_faults:
        rows.append(("faults counted by honest nodes", json.dumps(result.honest_faults)))
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)
    for note in result.notes:
        click.echo(f"note: {note}")
    for violation in result.violations:
        click.echo(f"VIOLATION: {violation}")
