"""A validator's data disk fills up (a small tmpfs, issue 12): the node stops loudly
(``/healthz`` 503 while it is still up, then exit status 1 with the reason in its log),
loses nothing it committed, and rejoins the others once space is freed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
import urllib.error
from pathlib import Path

import pytest

from ledger.build import build_attest
from node.settings import load_node_settings, render_node_toml
from tests.integration.node_processes import (
    api_url,
    block_hashes,
    http_json,
    start_node,
    stop,
    submit,
    wait_healthy,
    write_network,
)
from tests.spec.ledger_world import World

DISK_BYTES = 48 * 1024 * 1024
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root"
)


def fill(directory: Path) -> Path:
    """Write a filler file until the disk is full (unbuffered); its path."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def _attest(world: World, nonce: int) -> bytes:
    tx = build_attest(world.bank_a.identity, world.chain_id, "disk", bytes(32), nonce=nonce)
    return tx.encode()


def _committed_everywhere(urls: list[str], tx_id: str, timeout_s: float = 30) -> None:
    for url in urls:
        deadline = time.monotonic() + timeout_s
        while True:
            status, body = http_json(f"{url}/v1/txs/{tx_id}?wait=commit&timeout_ms=5000")
            if body.get("status") != "pending" or time.monotonic() > deadline:
                break
        assert status == 200 and body["status"] == "committed", (url, body)


def _health(url: str) -> int:
    try:
        return http_json(f"{url}/healthz")[0]
    except (urllib.error.URLError, OSError):
        return -1  # not answering: exited


@needs_root
def test_full_disk_stops_the_node_loudly_and_it_rejoins_after(tmp_path: Path) -> None:
    world = World()
    configs = write_network(tmp_path, world)
    disk = tmp_path / "disk3"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)], check=True
    )
    processes = []
    try:
        settings = load_node_settings(configs[3])
        text = render_node_toml(settings).replace(settings.node.data_dir, str(disk / "data"))
        configs[3].write_text(text, encoding="utf-8")
        urls = [api_url(c) for c in configs]
        logs = [tmp_path / f"n{i}.log" for i in range(4)]
        processes = [start_node(c, log) for c, log in zip(configs, logs, strict=True)]
        for url in urls:
            wait_healthy(url)
        before = []
        for nonce in range(1, 6):
            tx = build_attest(world.bank_a.identity, world.chain_id, "d", bytes(32), nonce=nonce)
            assert submit(urls[0], tx.encode())[0] == 202  # one entry: nonces stay in order
            before.append(tx.tx_id.hex())
            _committed_everywhere(urls, tx.tx_id.hex())
        height_before = int(str(http_json(f"{urls[3]}/v1/status")[1]["height"]))
        filler = fill(disk)
        # Traffic until node 3 notices: its next synced write fails.
        nonce = 6
        seen_503 = False
        deadline = time.monotonic() + 60
        while processes[3].poll() is None and time.monotonic() < deadline:
            tx = build_attest(world.bank_a.identity, world.chain_id, "d", bytes(32), nonce=nonce)
            submit(urls[0], tx.encode())
            nonce += 1
            seen_503 = seen_503 or _health(urls[3]) == 503
            time.sleep(0.05)
        code = processes[3].wait(timeout=30)
        log3 = logs[3].read_text()
        assert code == 1, log3[-3000:]
        assert "node halted" in log3 and "No space left on device" in log3, log3[-3000:]
        assert "Traceback" not in log3, log3[-3000:]
        # The others go on without it.
        after = build_attest(world.bank_a.identity, world.chain_id, "d", bytes(32), nonce=nonce)
        assert submit(urls[0], after.encode())[0] == 202
        _committed_everywhere(urls[:3], after.tx_id.hex())
        # Space freed: node 3 restarts, has everything it committed, and catches up.
        filler.unlink()
        processes[3] = start_node(configs[3], logs[3])
        wait_healthy(urls[3])
        for tx_id in before:
            _committed_everywhere([urls[3]], tx_id)
        _committed_everywhere([urls[3]], after.tx_id.hex(), timeout_s=60)
        top = int(str(http_json(f"{urls[0]}/v1/status")[1]["height"]))
        assert top > height_before
        deadline = time.monotonic() + 60
        while int(str(http_json(f"{urls[3]}/v1/status")[1]["height"])) < top:
            assert time.monotonic() < deadline, "node 3 did not catch up"
            time.sleep(0.5)
        assert block_hashes(urls[3], range(1, top + 1)) == block_hashes(urls[0], range(1, top + 1))
        print(f"disk full: 503 seen before exit: {seen_503}; heights {height_before} -> {top}")
    finally:
        for process in processes:
            stop(process)
        subprocess.run(["umount", "-l", str(disk)], check=False)
