"""Helpers for tests that run real ``python -m node`` processes on free 127.0.0.1 ports."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from ledger.genesis import save_genesis
from node.cli import node as node_cli
from node.settings import load_node_settings, render_node_toml
from tests.node_world import validator_identities
from tests.spec.ledger_world import World

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_network(tmp_path: Path, world: World, nodes: int = 4) -> list[Path]:
    """genesis.json, one key file and one node.toml (via `node init`) per validator."""
    genesis_path = tmp_path / "genesis.json"
    save_genesis(world.genesis, genesis_path)
    peer_ports = [free_port() for _ in range(nodes)]
    endpoints = [f"127.0.0.1:{port}" for port in peer_ports]
    configs = []
    for index, identity in enumerate(validator_identities(world)[:nodes]):
        key_path = tmp_path / f"v{index}.key"
        identity.save(key_path)
        data = tmp_path / f"n{index}"
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
                str(free_port()),
                "--peer-port",
                str(peer_ports[index]),
            ],
        )
        if result.exit_code != 0:
            raise AssertionError(result.output)
        config = data / "node.toml"
        # Plain links in this test (the transport's own tests cover TLS), all endpoints.
        settings = load_node_settings(config)
        text = render_node_toml(settings).replace("allow_plain = false", "allow_plain = true")
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
        )


def api_url(config: Path) -> str:
    settings = load_node_settings(config)
    return f"http://{settings.api.host}:{settings.api.port}"


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


def block_hashes(url: str, up_to_height: int) -> list[str]:
    """The node's block hash at every height from 1 to ``up_to_height``."""
    hashes = []
    for height in range(1, up_to_height + 1):
        status, body = http_json(f"{url}/v1/blocks/{height}")
        if status != 200:
            raise AssertionError(f"{url} has no block {height}: {body}")
        hashes.append(str(body["hash"]))
    return hashes


def submit(url: str, tx_bytes: bytes) -> tuple[int, dict[str, object]]:
    return http_json(f"{url}/v1/txs", {"tx": base64.b64encode(tx_bytes).decode()})


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


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)
