"""Real `python -m node run` processes (the `veil node` commands) on free 127.0.0.1 ports,
with TLS peer links (``write_network``)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from ledger.build import build_attest
from ledger.chain import open_chain
from ledger.identity import SigningIdentity
from ledger.leveldb_store import LevelDBStore
from ledger.stored_block import stored_block_claim
from privacy.msm import backend_name
from tests.integration.node_processes import (
    ROOT,
    api_url,
    http_json,
    start_node,
    stop,
    submit,
    wait_healthy,
    write_network,
)
from tests.spec.ledger_world import USD, World


def _run_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node", "run", "--config", str(config)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=180,  # a bound for a hang: the node fails in about a second, but a
        check=False,  # machine at load 40 once took over 60 s to import it
    )


def _committed(url: str, tx_id: str) -> dict[str, object]:
    status, body = http_json(f"{url}/v1/txs/{tx_id}?wait=commit&timeout_ms=20000")
    assert status == 200 and body["status"] == "committed", body
    return body


def _chain(urls: list[str], height: int) -> tuple[str, tuple[str, ...]]:
    """The one state root and block hashes all nodes report (fails if they differ)."""
    roots = {http_json(f"{url}/v1/status")[1]["state_root"] for url in urls}
    hashes = {
        tuple(str(http_json(f"{url}/v1/blocks/{h}")[1]["hash"]) for h in range(1, height + 1))
        for url in urls
    }
    assert len(roots) == 1 and len(hashes) == 1, (roots, hashes)
    return str(roots.pop()), hashes.pop()


def test_four_node_processes_commit_txs_drain_on_sigterm_and_resume(tmp_path: Path) -> None:
    world = World()
    configs = write_network(tmp_path, world)
    urls = [api_url(c) for c in configs]
    logs = [tmp_path / f"n{i}.log" for i in range(4)]
    processes = [start_node(c, log) for c, log in zip(configs, logs, strict=True)]
    try:
        for url in urls:
            wait_healthy(url)
        attest = build_attest(world.bank_b.identity, world.chain_id, "d", b"\x07" * 32, nonce=1)
        issue = world.issue(world.bank_a, USD, [world.alice.plan(10), world.alice.plan(5)])
        for url, tx in ((urls[0], attest), (urls[2], issue)):
            status, body = submit(url, tx.encode())
            assert (status, body) == (202, {"id": tx.tx_id.hex(), "status": "pending"}), body
        views = [[_committed(url, tx.tx_id.hex()) for url in urls] for tx in (attest, issue)]
        for per_node in views:
            assert len({(v["height"], v["block_hash"]) for v in per_node}) == 1
        statuses = [http_json(f"{url}/v1/status")[1] for url in urls]
        heights = {status["height"] for status in statuses}
        assert len(heights) == 1
        # Issue 13: each node reports the multiscalar backend it verifies with.
        assert {status["msm_backend"] for status in statuses} == {backend_name()}
        metrics = urllib.request.urlopen(f"{urls[0]}/metrics", timeout=10).read().decode()
        assert f'veil_msm_info{{backend="{backend_name()}"}} 1.0' in metrics
        (height,) = heights
        chain = _chain(urls, height)
    finally:
        codes = [stop(p) for p in processes]
    assert codes == [0, 0, 0, 0], [log.read_text()[-2000:] for log in logs]
    assert f"with the {backend_name()} multiscalar backend" in logs[0].read_text()
    assert "the state tree walked in C" in logs[0].read_text()  # make install built it
    # Each validator its own write buffer, so they flush at different heights.
    buffers = [re.search(r"write buffer ([0-9.]+) MiB", log.read_text()) for log in logs]
    assert sorted(m.group(1) for m in buffers if m) == ["16.0", "18.0", "20.0", "22.0"]
    # Restart all four: they resume from the WAL and the store.
    processes = [start_node(c, log) for c, log in zip(configs, logs, strict=True)]
    try:
        for url in urls:
            wait_healthy(url)
        assert {http_json(f"{url}/v1/status")[1]["height"] for url in urls} == heights
        assert _chain(urls, height) == chain  # same hashes and state root, from disk
        again = build_attest(world.bank_b.identity, world.chain_id, "d", b"\x08" * 32, nonce=2)
        assert submit(urls[1], again.encode())[0] == 202
        assert len({_committed(url, again.tx_id.hex())["block_hash"] for url in urls}) == 1
    finally:
        codes = [stop(p) for p in processes]
    assert codes == [0, 0, 0, 0]


def test_start_up_fails_fast_with_one_line(tmp_path: Path) -> None:
    world = World()
    config = write_network(tmp_path, world, nodes=4)[0]
    original = config.read_text()

    def expect(problem: str) -> None:
        done = _run_once(config)
        lines = done.stdout.strip().splitlines()
        assert done.returncode == 2, done.stdout + done.stderr
        assert len(lines) == 1 and problem in lines[0], done.stdout

    # A missing key file (never generated).
    key_path = tmp_path / "v0.key"
    key_path.rename(tmp_path / "moved.key")
    expect("no such key file")
    (tmp_path / "moved.key").rename(key_path)
    # A key that is no validator of the genesis.
    stranger = tmp_path / "stranger.key"
    SigningIdentity.generate().save(stranger)
    config.write_text(original.replace(str(key_path), str(stranger)))
    expect("is not a validator of chain")
    # An unreadable genesis.
    bad_genesis = tmp_path / "bad.json"
    bad_genesis.write_text("{not json")
    config.write_text(original.replace(str(tmp_path / "genesis.json"), str(bad_genesis)))
    expect("cannot read genesis")
    # A data directory of another chain.
    other = dataclasses.replace(world.genesis, chain_name="another-chain")
    store = LevelDBStore(tmp_path / "n0" / "chain", block_claims=stored_block_claim)
    open_chain(store, other)
    store.close()
    config.write_text(original)
    expect("the data directory holds chain")
    shutil.rmtree(tmp_path / "n0" / "chain")
    # A port in use (the API port is taken by another listener).
    config.write_text(original)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lines = original.splitlines()
        at = lines.index("[api]")
        for i in range(at, len(lines)):
            if lines[i].startswith("port = "):
                lines[i] = f"port = {port}"
                break
        config.write_text("\n".join(lines) + "\n")
        expect("cannot serve the API")
    config.write_text(original)
    # An unknown option in node.toml.
    config.write_text(original + "\n[extra]\nx = 1\n")
    expect("unknown section [extra]")
