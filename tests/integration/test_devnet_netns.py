"""``python -m devnet up --netns`` (issue 12): each node in its own network namespace on
one bridge, peers talking only over it, the API reachable from the host; ``down``
removes every namespace, veth and bridge, also after the tool was SIGKILLed mid-setup."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devnet import netns
from devnet.netns import Journal, NetnsError

ROOT = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="--netns needs root and iproute2"
)


def devnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devnet", *args],
        cwd=ROOT,
        env=env or dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def journal_names(root: Path) -> list[str]:
    return [entry["name"] for entry in Journal(root).read()]


def test_refuses_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NetnsError, match="needs root"):
        netns.require_netns_tools()


def test_refuses_without_ip_command(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=str(empty_bin))
    result = devnet("up", "--netns", "--no-demo", "--dir", str(tmp_path / "d"), env=env)
    assert result.returncode != 0
    message = result.stderr + result.stdout
    assert "needs root" in message or "needs the `ip` command" in message


@needs_root
def test_nodes_talk_only_over_the_bridge(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    try:
        up = devnet("up", "--netns", "--no-demo", "--dir", str(root))
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(devnet("status", "--json", "--dir", str(root)).stdout)
        layout = netns.layout_for_hosts(
            root, tuple(r["url"].split("/")[2].split(":")[0] for r in status)
        )
        subnet = f"{netns.SUBNET_PREFIX}.{layout.subnet_octet}."
        for row in status:
            assert row["url"].startswith(f"http://{subnet}")
            assert row["peers"] == 3, row  # each node reached the 3 others
            with urllib.request.urlopen(f"{row['url']}/healthz", timeout=10) as answer:
                assert answer.status == 200  # the API, from the host, over the bridge
        for index in range(4):
            namespace = layout.namespace(index)
            links = netns.ip("-o", "link", "show", namespace=namespace)
            assert {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()} == {
                "lo",
                layout.node_veth(index),
            }
            assert (
                netns.ip("route", "show", namespace=namespace)
                .strip()
                .startswith(f"{subnet}0/24 dev {layout.node_veth(index)}")
            )
            sockets = netns.run_tool(
                [*netns.exec_prefix(namespace), "ss", "-Htn", "state", "established"]
            )
            peers = [line.split()[-1] for line in sockets.splitlines()]
            assert peers, "no established peer links"
            # Every connection runs between addresses of the test subnet, never loopback.
            assert all(p.startswith(subnet) for p in peers), peers
            assert all(line.split()[-2].startswith(subnet) for line in sockets.splitlines())
    finally:
        down = devnet("down", "--dir", str(root))
    assert down.returncode == 0, down.stderr
    assert not netns.leftovers(root)


@needs_root
def test_down_removes_everything_after_the_tool_is_killed_mid_setup(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    tool = subprocess.Popen(
        [sys.executable, "-m", "devnet", "up", "--netns", "--no-demo", "--dir", str(root)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(journal_names(root) if root.exists() else []) < 4:
            assert time.monotonic() < deadline, "setup never got going"
            assert tool.poll() is None, "the tool finished before it could be killed"
            time.sleep(0.005)
    finally:
        tool.send_signal(signal.SIGKILL)
        tool.wait()
    made = journal_names(root)
    assert made[0] == f"{netns.devnet_prefix(root)}br"
    left_before = netns.leftovers(root)
    assert left_before, "the kill left nothing to clean up: the test proves nothing"
    down = devnet("down", "--dir", str(root))
    assert down.returncode == 0, down.stdout + down.stderr
    namespaces = netns.ip("netns", "list")
    for name in made:
        assert name not in namespaces
        assert not netns.ip("-o", "link", "show", "dev", name, check=False).strip()
    assert not Journal(root).exists()
