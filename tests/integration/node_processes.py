"""Helpers for tests that run real ``python -m node`` processes on free 127.0.0.1 ports.

Peer links are mutual TLS, as in production: ``write_network`` makes a CA
under ``tmp_path/tls`` and a certificate per node (``network_ca`` gives the
CA back, to issue an outsider's certificate). Each node runs in its own
process group, so ``kill_node`` SIGKILLs it together with its proof-pool
workers, as a host crash or systemd's ``KillMode=control-group`` would.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from ledger.build import BuiltTx, build_attest
from ledger.genesis import save_genesis
from node.cli import node as node_cli
from node.settings import load_node_settings, render_node_toml
from node.tls import CaFiles, create_ca, issue_node_certificate
from tests.node_world import validator_identities
from tests.spec.ledger_world import USD, World

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports. Every socket stays bound until all are
    chosen: two separate ``free_port()`` calls can return the same port (one
    network got it as node 1's API port and node 3's peer port)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def network_ca(tmp_path: Path) -> CaFiles:
    """The CA ``write_network`` made for the network in ``tmp_path``."""
    return CaFiles(tmp_path / "tls" / "ca.pem", tmp_path / "tls" / "ca.key")


def write_network(tmp_path: Path, world: World, nodes: int = 4, *, tls: bool = True) -> list[Path]:
    """genesis.json, one key file and one node.toml (via `node init`) per validator;
    with ``tls`` a CA and a certificate per node (else plain links, allowed explicitly)."""
    genesis_path = tmp_path / "genesis.json"
    save_genesis(world.genesis, genesis_path)
    ports = free_ports(2 * nodes)
    peer_ports, api_ports = ports[:nodes], ports[nodes:]
    endpoints = [f"127.0.0.1:{port}" for port in peer_ports]
    ca = create_ca(tmp_path / "tls") if tls else None
    configs = []
    for index, identity in enumerate(validator_identities(world)[:nodes]):
        key_path = tmp_path / f"v{index}.key"
        identity.save(key_path)
        data = tmp_path / f"n{index}"
        if ca is None:
            links = ["--allow-plain"]
        else:
            files = issue_node_certificate(ca, tmp_path / "tls", name=f"node{index}")
            links = ["--tls-cert", str(files.cert_file), "--tls-key", str(files.key_file)]
            links += ["--tls-ca", str(files.ca_file)]
        result = CliRunner().invoke(
            node_cli,
            [
                "init",
                "--genesis",
                str(genesis_path),
                "--key",
                str(key_path),
                "--data",
                str(data),
                "--api-port",
                str(api_ports[index]),
                "--peer-port",
                str(peer_ports[index]),
                *links,
            ],
        )
        if result.exit_code != 0:
            raise AssertionError(result.output)
        config = data / "node.toml"
        text = render_node_toml(load_node_settings(config))
        text = text.replace("endpoints = []", f"endpoints = {json.dumps(endpoints)}")
        config.write_text(text, encoding="utf-8")
        configs.append(config)
    return configs


def start_node(
    config: Path,
    log_path: Path,
    extra_args: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(extra_env or {}))
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "node", "run", "--config", str(config), *extra_args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill_node takes its workers too
        )


def kill_node(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the node and every process of its group (its proof-pool workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def api_url(config: Path) -> str:
    settings = load_node_settings(config)
    return f"http://{settings.api.host}:{settings.api.port}"


def peer_port(config: Path) -> int:
    return load_node_settings(config).peer.listen_port


def http_json(url: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if body else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def http_raw(
    url: str, body: bytes, content_type: str | None
) -> tuple[int, dict[str, object] | None]:
    """POST ``body`` as is; the status and the JSON answer (None if it is not JSON)."""
    request = urllib.request.Request(url, data=body, method="POST")
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def metric_values(url: str, name: str) -> dict[str, float]:
    """``name``'s samples from /metrics, keyed by their label text ("" without labels)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            values[key[len(name) :].strip("{}")] = float(value)
    return values


def submit(url: str, tx_bytes: bytes) -> tuple[int, dict[str, object]]:
    return http_json(f"{url}/v1/txs", {"tx": base64.b64encode(tx_bytes).decode()})


def metric_value(url: str, name: str, labels: str = "") -> float:
    """One sample of ``/metrics`` (``name{labels}``); 0 when the series is absent."""
    return metric_values(url, name).get(labels, 0.0)


def wait_healthy(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status, _ = http_json(f"{url}/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy after {timeout_s} s")


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


class Cluster:
    """Four (or ``nodes``) ``veil node run`` processes of ``world``'s chain over TLS."""

    def __init__(self, tmp_path: Path, world: World, nodes: int = 4) -> None:
        self.tmp_path = tmp_path
        self.world = world
        self.configs = write_network(tmp_path, world, nodes)
        self.urls = [api_url(c) for c in self.configs]
        self.logs = [tmp_path / f"n{i}.log" for i in range(nodes)]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * nodes

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        for index in self.running():
            process = self.processes[index]
            if process is not None:
                kill_node(process)

    @property
    def indices(self) -> range:
        return range(len(self.configs))

    def start(self, *indices: int) -> None:
        for i in indices or self.indices:
            self.processes[i] = start_node(self.configs[i], self.logs[i])
        for i in indices or self.indices:
            wait_healthy(self.urls[i])

    def kill(self, *indices: int) -> None:
        for i in indices or self.indices:
            process = self.processes[i]
            if process is not None:
                kill_node(process)
                self.processes[i] = None

    def stop(self, *indices: int) -> list[int]:
        """SIGTERM each, then wait: the exit codes."""
        chosen = [i for i in (indices or self.indices) if self.processes[i] is not None]
        for i in chosen:
            process = self.processes[i]
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for i in chosen:
            process = self.processes[i]
            if process is not None:
                codes.append(process.wait(timeout=30))
                self.processes[i] = None
        return codes

    def running(self) -> list[int]:
        return [i for i, p in enumerate(self.processes) if p is not None and p.poll() is None]

    def status(self, index: int) -> dict[str, object]:
        code, body = http_json(f"{self.urls[index]}/v1/status")
        if code != 200:
            raise AssertionError(f"node {index} status {code}: {body}")
        return body

    def height(self, index: int) -> int:
        height = self.status(index)["height"]
        if not isinstance(height, int):
            raise AssertionError(f"height {height!r}")
        return height

    def log_tails(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- node {i} ---\n{log.read_text(errors='replace')[-chars:]}"
            for i, log in enumerate(self.logs)
            if log.exists()
        )


def block_hashes(url: str, heights: Sequence[int]) -> dict[int, str]:
    """Each height's block hash as the node at ``url`` reports it."""

    def one(height: int) -> tuple[int, str]:
        code, body = http_json(f"{url}/v1/blocks/{height}")
        if code != 200:
            raise AssertionError(f"{url} block {height}: {code} {body}")
        return height, str(body["hash"])

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, heights))


def block_txs(url: str, heights: Sequence[int]) -> dict[str, int]:
    """tx id -> height of every tx in the node's blocks at ``heights``."""

    def one(height: int) -> list[tuple[str, int]]:
        code, body = http_json(f"{url}/v1/blocks/{height}")
        if code != 200:
            raise AssertionError(f"{url} block {height}: {code} {body}")
        txs = body["txs"]
        if not isinstance(txs, list):
            raise AssertionError(f"block {height} txs {txs!r}")
        return [(str(tx["id"]), height) for tx in txs]

    with ThreadPoolExecutor(8) as pool:
        return {tx_id: h for pairs in pool.map(one, heights) for tx_id, h in pairs}


def committed_reports(url: str, tx_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The txs the node at ``url`` reports ``committed``: id -> (height, block hash)."""

    def one(tx_id: str) -> tuple[str, tuple[int, str] | None]:
        code, body = http_json(f"{url}/v1/txs/{tx_id}")
        if code == 200 and body.get("status") == "committed":
            height = body["height"]
            if not isinstance(height, int):
                raise AssertionError(f"{tx_id} committed at height {height!r}")
            return tx_id, (height, str(body["block_hash"]))
        return tx_id, None

    with ThreadPoolExecutor(8) as pool:
        return {tx_id: where for tx_id, where in pool.map(one, tx_ids) if where is not None}


def assert_same_chain(cluster: Cluster, nodes: Sequence[int], height: int | None = None) -> int:
    """The nodes have one block hash per height up to ``height``; that height.

    Without ``height`` the nodes must stand at one height and state root now, which
    only holds once nothing is left to commit. A caller whose load may still be
    draining passes the height they were seen to agree on: blocks below it are
    final, so a straggler committed afterwards cannot make the check flaky."""
    if height is None:
        statuses = {i: cluster.status(i) for i in nodes}
        tips = {(s["height"], s["state_root"]) for s in statuses.values()}
        if len(tips) != 1:
            raise AssertionError(f"nodes differ: {statuses}")
        height = cluster.height(nodes[0])
    chains = {i: block_hashes(cluster.urls[i], range(1, height + 1)) for i in nodes}
    first = chains[nodes[0]]
    for i, chain in chains.items():
        forks = [h for h in first if chain[h] != first[h]]
        if forks:
            raise AssertionError(f"node {i} forks from node {nodes[0]} at heights {forks[:5]}")
    return height


def wait_converged(cluster: Cluster, nodes: Sequence[int], timeout_s: float = 30) -> int:
    """Wait until the nodes are quiet (empty mempools) and agree on height and state
    root; then check every block hash up to that height.

    Quiet matters: a tx the load left in a mempool commits a moment later, and a
    check made between two nodes' commits of it would report a false difference."""
    agreed: list[int] = []
    last: dict[int, object] = {}

    def quiet_and_same_tip() -> bool:
        statuses = [cluster.status(i) for i in nodes]
        last.update(
            (i, {k: s.get(k) for k in ("height", "view", "mempool_txs", "catching_up")})
            for i, s in zip(nodes, statuses, strict=True)
        )
        tips = {(s["height"], s["state_root"]) for s in statuses}
        if len(tips) != 1 or any(s["mempool_txs"] for s in statuses):
            return False
        height = statuses[0]["height"]
        assert isinstance(height, int)
        agreed.append(height)
        return True

    try:
        wait_for(
            quiet_and_same_tip,
            f"nodes {list(nodes)} with empty mempools at one height and state root",
            timeout_s,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last}") from None
    return assert_same_chain(cluster, nodes, agreed[-1])


@dataclass
class Load:
    """A background thread submitting pre-built txs to the nodes that are up.

    Each tx goes to its preferred node (``prefer(index)``), or the next one up
    when that one refuses the connection. ``acknowledged`` holds every tx a
    node answered 202; ``refused`` the other answers (by code), which are
    expected under faults (a replayed nonce after gossip raced a submit).
    """

    cluster: Cluster
    txs: list[BuiltTx]
    interval_s: float = 0.02
    acknowledged: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _next: int = 0

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def submitted(self) -> int:
        return self._next

    def _run(self) -> None:
        while not self._stop.is_set() and self._next < len(self.txs):
            tx = self.txs[self._next]
            self._submit(tx, self._next)
            self._next += 1
            self._stop.wait(self.interval_s)

    def _submit(self, tx: BuiltTx, index: int) -> None:
        nodes = list(self.cluster.indices)
        start = index % len(nodes)
        for node in nodes[start:] + nodes[:start]:
            if node not in self.cluster.running():
                continue
            try:
                code, body = submit(self.cluster.urls[node], tx.encode())
            except (OSError, ValueError):
                continue  # the node died under us: try the next one
            if code == 202:
                self.acknowledged[tx.tx_id.hex()] = node
            else:
                error = body.get("error")
                reason = error.get("code") if isinstance(error, dict) else str(code)
                self.refused[str(reason)] = self.refused.get(str(reason), 0) + 1
            return


def attests(world: World, count: int) -> list[BuiltTx]:
    """``count`` attests alternating between the two member banks, each bank's
    nonces rising (``world.next_nonce``, so they follow the world's earlier txs)."""
    built = []
    for i in range(count):
        bank = world.bank_a if i % 2 == 0 else world.bank_b
        digest = i.to_bytes(32, "big")
        nonce = world.next_nonce(bank)
        built.append(build_attest(bank.identity, world.chain_id, "load", digest, nonce=nonce))
    return built


FUNDED_OUTPUTS = 8


@dataclass(frozen=True)
class Funded:
    """An issue of bank A to alice and one transfer per issued output (alice pays bob).

    Valid on any fresh chain of ``World``'s genesis once ``issue`` is committed.
    Tests draw later nonces from ``world`` (``next_nonce``), so their txs follow
    the issue's.
    """

    world: World
    issue: BuiltTx
    transfers: tuple[BuiltTx, ...]


def build_funded() -> Funded:
    world = World()
    issue = world.issue(
        world.bank_a, USD, [world.alice.plan(1_000 + i) for i in range(FUNDED_OUTPUTS)]
    )
    transfers = tuple(
        world.transfer(
            world.alice,
            USD,
            [world.spend(issue, i)],
            [world.bob.plan(600), world.alice.plan(400 + i)],
        )
        for i in range(FUNDED_OUTPUTS)
    )
    return Funded(world, issue, transfers)
