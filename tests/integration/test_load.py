"""The load generator (``devnet.load``, issue 9 "Numbers") against a real 4-node devnet: a
short mixed run through the API the chaos tool uses, and ``python -m benchmarks.load --json``."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.load import main
from client.sdk import Client, RetryPolicy, VeilApiError
from devnet.load.drive import Ack
from devnet.load.run import run_load
from devnet.network import Devnet, open_devnet

JSON_FIELDS = ("committed_tx_per_s", "p50_s", "p95_s", "p99_s", "rejected", "cpu_s_per_node")


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


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    root = tmp_path_factory.mktemp("load") / "devnet"
    net = open_devnet(root, _free_base_port(), 4)
    net.write_files()
    try:
        for index in range(net.nodes):
            net.start(index)
        deadline = time.monotonic() + 60
        pending = set(range(net.nodes))
        while pending and time.monotonic() < deadline:
            for index in sorted(pending):
                try:
                    quick = Client(net.url(index), timeout_s=2, retry=RetryPolicy(attempts=1))
                    if quick.health().ok:
                        pending.discard(index)
                except VeilApiError:
                    pass
            time.sleep(0.2)
        assert not pending, f"nodes {sorted(pending)} not healthy; logs in {root}/nodes"
        yield net
    finally:
        net.stop_all()


def test_mixed_run_reports_every_ack_with_its_final_status(devnet: Devnet) -> None:
    acks: list[Ack] = []
    report = asyncio.run(
        run_load(devnet.root, "mixed", 4.0, 60.0, on_ack=acks.append, count=160, senders=8)
    )
    assert report.committed > 0 and report.committed_tx_per_s > 0
    assert report.server_errors == 0
    assert report.rejected == 0, report.rejected_by_reason
    # Every ack was reported once, and the report gives each a final status.
    assert len({a.tx_id for a in acks}) == len(acks) == len(report.outcomes)
    assert {o.tx_id for o in report.outcomes} == {a.tx_id for a in acks}
    assert {o.kind for o in report.outcomes} == {"attest", "transfer"}
    committed = [o for o in report.outcomes if o.status == "committed"]
    assert len(committed) == report.committed
    assert all(o.height is not None and o.latency_s is not None for o in committed)
    assert all(0 <= a.node < 4 and a.acked_at_s >= a.submitted_at_s for a in acks)
    # The committed ones are really on the chain, where the report says.
    sample = committed[0]
    status = Client(devnet.url(3)).wait_for_commit(sample.tx_id, 10)
    assert status.status == "committed" and status.height == sample.height
    assert report.p50_s is not None and report.p50_s <= (report.p99_s or 0)
    assert all(cpu is not None and cpu > 0 for cpu in report.cpu_s_per_node)
    assert report.run_cpu_s_by_thread.get("MainThread", 0) > 0, report.run_cpu_s_by_thread


def test_json_command_line(devnet: Devnet, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--dir",
            str(devnet.root),
            "--kind",
            "attest",
            "--duration",
            "2",
            "--rate",
            "100",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for name in JSON_FIELDS:
        assert name in report, name
    assert report["committed_tx_per_s"] > 0
    assert report["server_errors"] == 0 and report["rejected"] == 0
    assert len(report["cpu_s_per_node"]) == 4
    # Two figures: the window (beside the nodes') and the preparation before it.
    assert report["generator_cpu_s"] > 0
    assert report["generator_prepare_cpu_s"] > 0


def test_runs_in_a_row_print_one_json_object_each(
    devnet: Devnet, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--dir", str(devnet.root), "--kind", "attest", "--duration", "1", "--rate", "50"]
    assert main([*args, "--runs", "2", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    reports = [json.loads(line) for line in lines]
    for report in reports:
        assert report["committed_tx_per_s"] > 0
        assert report["server_errors"] == 0 and report["rejected"] == 0


def test_unknown_devnet_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--dir", str(tmp_path / "none"), "--kind", "attest", "--duration", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"no devnet in {tmp_path / 'none'} (no genesis.json)" in err
    assert len(err.strip().splitlines()) == 1


def test_a_devnet_whose_nodes_are_down_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its files exist but no node runs: the load says so instead of hanging."""
    root = tmp_path / "stopped"
    open_devnet(root, base_port=_free_base_port()).write_files()
    code = main(["--dir", str(root), "--kind", "attest", "--duration", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"no node of the devnet in {root} answers" in err
    assert len(err.strip().splitlines()) == 1
