"""Short runs of ``python -m devnet chaos`` (issue 12) against real 4-node devnets: each
scenario 20-40 s under the load generator's mixed load (transfers and attests), then no
lost commit, no fork, convergence, bounded recovery; and a run that breaks its recovery
bound exits 1 with the replay command."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHORT_S = "30"
is_root = os.geteuid() == 0 and shutil.which("ip") is not None
needs_root = pytest.mark.skipif(not is_root, reason="needs root and iproute2 (netns, tmpfs)")


def _free_base_port(nodes: int = 4) -> int:
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20_000, 40_000)
        ports = [base + i for i in range(nodes)] + [base + 1000 + i for i in range(nodes)]
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range")


def devnet(*args: str, timeout_s: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devnet", *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _up(root: Path, *extra: str) -> Iterator[Path]:
    up = devnet("up", "--no-demo", "--dir", str(root), *extra)
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield root
    finally:
        down = devnet("down", "--dir", str(root))
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def loopback_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("chaos") / "devnet"
    yield from _up(root, "--base-port", str(_free_base_port()))


@pytest.fixture(scope="module")
def netns_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not is_root:
        pytest.skip("--netns needs root and iproute2")
    root = tmp_path_factory.mktemp("chaos-netns") / "devnet"
    yield from _up(root, "--netns")


def chaos(root: Path, scenario: str, seed: int, *extra: str) -> dict[str, object]:
    run = devnet(
        "chaos",
        "--dir",
        str(root),
        "--scenario",
        scenario,
        "--duration",
        SHORT_S,
        "--seed",
        str(seed),
        "--json",
        *extra,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    print(scenario, json.dumps(result))
    assert result["scenario"] == scenario and result["seed"] == seed
    assert result["lost"] == 0 and result["forks"] == 0 and result["converged"] is True
    assert result["violations"] == []
    assert isinstance(result["acknowledged"], int) and result["acknowledged"] > 0
    assert isinstance(result["committed"], int) and result["committed"] > 0
    assert isinstance(result["rounds"], int)
    # Progress on stderr, a line per round, so an hour-long soak shows it is alive.
    assert "calm baseline under load" in run.stderr, run.stderr[-2000:]
    # The generator's own steps too: proving thousands of transfers takes minutes.
    assert re.search(r"^\d\d:\d\d:\d\d registering and funding \d+ senders", run.stderr, re.M)
    assert re.search(r"^\d\d:\d\d:\d\d submitting \d+ mixed txs", run.stderr, re.M)
    if result["rounds"]:
        assert re.search(r"^\d\d:\d\d:\d\d round 1: .+ progress again after", run.stderr, re.M)
    return result


def test_kill_primary(loopback_devnet: Path) -> None:
    result = chaos(loopback_devnet, "kill-primary", 11)
    assert result["rounds"] >= 1 and result["recovery_s_p99"] is not None
    # The load is the load generator's mixed load: confidential transfers commit too.
    committed = result["committed_by_kind"]
    assert isinstance(committed, dict)
    assert committed.get("transfer", 0) > 0 and committed.get("attest", 0) > 0, committed


def test_byzantine_primary(loopback_devnet: Path) -> None:
    result = chaos(loopback_devnet, "byzantine", 12)
    faults = result["honest_faults"]
    assert isinstance(faults, dict) and faults, "the honest nodes counted no fault"


@needs_root
def test_disk_full(loopback_devnet: Path) -> None:
    result = chaos(loopback_devnet, "disk", 13)
    assert result["rounds"] >= 1 and result["recovery_s_p99"] is not None


def test_a_broken_recovery_bound_exits_1_with_the_replay_command(loopback_devnet: Path) -> None:
    # Four restarted processes need about a second before they commit again (1.0-1.1 s
    # on the faster host, so a 1 s bound held in some rounds): 0.2 s is broken in every one.
    run = devnet(
        "chaos",
        "--dir",
        str(loopback_devnet),
        "--scenario",
        "kill-all",
        "--duration",
        "12",
        "--seed",
        "14",
        "--recovery-bound",
        "0.2",
        "--json",
    )
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert any("no progress within 0.2 s" in v for v in result["violations"]), result
    assert "VIOLATION in scenario kill-all, seed 14" in run.stderr
    assert "VIOLATION round 0: no progress within 0.2 s" in run.stderr
    assert "--scenario kill-all --duration 12 --seed 14" in run.stderr


def test_network_scenarios_need_netns(loopback_devnet: Path) -> None:
    run = devnet(
        "chaos", "--dir", str(loopback_devnet), "--scenario", "partition", "--duration", "5"
    )
    assert run.returncode != 0
    assert "needs a devnet made with `up --netns`" in run.stderr


@needs_root
def test_partition_split_and_heal(netns_devnet: Path) -> None:
    # Round 0 is a 2 | 2 split (no progress allowed while it lasts), round 1 one node alone.
    result = chaos(netns_devnet, "partition", 15)
    assert isinstance(result["rounds"], int) and result["rounds"] >= 2


@needs_root
def test_latency_between_banks(netns_devnet: Path) -> None:
    result = chaos(netns_devnet, "latency", 16)
    notes = result["notes"]
    assert isinstance(notes, list) and any("latency per node" in str(n) for n in notes)
    faulted, baseline = result["faulted"], result["baseline"]
    assert isinstance(faulted, dict) and isinstance(baseline, dict)
    assert faulted["committed_tx_per_s"] > 0
