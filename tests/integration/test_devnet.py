"""Issue 10's end-to-end test: a real devnet (4 node processes), the demo flow through the
``veil`` CLI, a leak scan for a distinctive amount, SIGKILL and restart of node 0 with
catch-up to the same state root, and ``down --purge`` leaving nothing behind."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner, Result

from client.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PAID: int = 7_391_864_253  # distinctive: must appear in no API answer, log or LevelDB file
ISSUED: int = 9_000_000_001


def free_base_port(nodes: int = 4) -> int:
    """A base port whose API and peer ports are free, all below Linux's ephemeral range
    (32768+): the nodes' own outgoing connections could take a port above it first."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20_000, 31_000 - nodes)
        ports = [base + i for i in range(nodes)] + [base + 1000 + i for i in range(nodes)]
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range")


def devnet(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "devnet", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def veil(url: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--node", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def _status(root: Path) -> list[dict[str, object]]:
    result = devnet("status", "--dir", str(root), "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_devnet_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    base = free_base_port()
    started = devnet("up", "--dir", str(root), "--base-port", str(base), "--no-demo")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        assert "devnet ready" in started.stdout
        again = devnet("up", "--dir", str(root), "--base-port", str(base))
        assert again.returncode != 0 and "already running" in again.stderr
        rows = _status(root)
        assert [sorted(r) for r in rows] == [
            sorted(["index", "pid", "url", "height", "view", "state_root", "peers"])
        ] * 4
        for key_file in root.rglob("*.key"):
            assert key_file.stat().st_mode & 0o077 == 0, key_file
        urls = [str(r["url"]) for r in rows]
        for url in urls:  # the banner names each node's explorer, and it answers
            assert f"explorer {url}/explorer/" in started.stdout, started.stdout
            assert b"<title>Veil Explorer</title>" in _get(f"{url}/explorer/")
        bank, x, y = root / "banks/bank0", root / "clients/firm-x", root / "clients/firm-y"
        bank_pk = json.loads(
            veil(urls[0], "--json", "wallet", "show", "--wallet", str(bank)).output
        )["public_key"]
        firms = {}
        for firm in (x, y):
            shown = json.loads(
                veil(urls[0], "--json", "wallet", "show", "--wallet", str(firm)).output
            )
            assert shown["registered"] is False
            pop = veil(urls[0], "wallet", "pop", "--wallet", str(firm), "--registrar", bank_pk)
            veil(
                urls[0],
                "bank",
                "register-account",
                "--wallet",
                str(bank),
                "--account",
                shown["public_key"],
                "--memo-key",
                shown["memo_public_key"],
                "--pop",
                pop.output.strip(),
                "--wait",
            )
            firms[firm] = shown["public_key"]
        veil(
            urls[0],
            "bank",
            "issue",
            "--wallet",
            str(bank),
            "--to",
            firms[x],
            "--amount",
            str(ISSUED),
            "--wait",
        )
        # Write through node 0; wait on every node before reading from it (they may lag).
        paid = veil(
            urls[0],
            "--json",
            "wallet",
            "transfer",
            "--wallet",
            str(x),
            "--to",
            firms[y],
            "--asset",
            "USD.B0",
            "--amount",
            str(PAID),
            "--wait",
        )
        for url in urls:
            veil(url, "tx", "wait", json.loads(paid.output)["id"])
        balance_y = json.loads(
            veil(urls[3], "--json", "wallet", "balance", "--wallet", str(y)).output
        )
        assert balance_y == [{"asset": "USD.B0", "amount": PAID}]
        balance_x = json.loads(
            veil(urls[0], "--json", "wallet", "balance", "--wallet", str(x)).output
        )
        assert balance_x == [{"asset": "USD.B0", "amount": ISSUED - PAID}]

        # Leak scan: the amount paid, in decimal or as 8 little-endian bytes.
        needles = (str(PAID).encode(), PAID.to_bytes(8, "little"))
        height = int(json.loads(veil(urls[0], "--json", "chain", "status").output)["height"])
        answers = [
            _get(f"{url}{path}")
            for url in urls
            for path in (
                *[f"/v1/blocks/{h}" for h in range(height + 1)],
                "/v1/status",
                "/v1/chain",
                "/v1/network",
                f"/v1/outputs?owner={firms[y]}",
                f"/v1/accounts/{firms[y]}",
                "/metrics",
            )
        ]
        answers += [_get(f"{urls[0]}/v1/blocks/{h}?format=raw") for h in range(1, height + 1)]
        for body in answers:
            assert not any(n in body for n in needles)
        node_files = [p for p in (root / "nodes").rglob("*") if p.is_file()]
        assert any(p.name == "node.log" for p in node_files)
        assert any(p.suffix in (".ldb", ".log") and "data" in p.parts for p in node_files)
        for path in node_files:
            data = path.read_bytes()
            assert not any(n in data for n in needles), path

        # SIGKILL node 0 and keep transacting through the others.
        assert devnet("kill", "--dir", str(root), "0").returncode == 0
        assert _status(root)[0]["pid"] is None
        veil(
            urls[1],
            "wallet",
            "transfer",
            "--wallet",
            str(y),
            "--to",
            firms[x],
            "--asset",
            "USD.B0",
            "--amount",
            "1000",
            "--wait",
        )
        assert devnet("start", "--dir", str(root), "0").returncode == 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows = _status(root)
            roots = {r["state_root"] for r in rows}
            if len(roots) == 1 and None not in roots and rows[0]["height"] == rows[1]["height"]:
                break
            time.sleep(0.5)
        assert len({(r["height"], r["state_root"]) for r in rows}) == 1, rows
        pids = [int(str(r["pid"])) for r in rows]
    finally:
        down = devnet("down", "--dir", str(root), "--purge")
    assert down.returncode == 0, down.stderr
    assert not root.exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
