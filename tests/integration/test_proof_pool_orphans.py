"""A SIGKILLed node takes its proof-pool workers with it, and its ports come free.

The workers are forked from the node and hold copies of its listening
sockets; before they died with their parent, a restarted node found its peer
port in use (devnet commit 271e837). A real ``python -m node run`` process
verifies one tx's range proof (so its pool has started), then only the
node's own pid is SIGKILLed: its workers must be gone within a few seconds
and both of its ports must be bindable again.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from node.settings import load_node_settings
from tests.integration.node_processes import (
    api_url,
    http_json,
    start_node,
    submit,
    write_network,
)
from tests.spec.ledger_world import USD, World

GONE_WITHIN_S = 5.0


def children_of(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Any thread of ``pid`` not yet dead. A killed process's leader shows as a zombie
    while its other threads (a worker's parent-watch thread) still exit and hold its
    files, sockets included: the leader's state alone said "gone" too early, and the
    port check that followed failed about one run in five."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for thread in threads:
        try:
            state = (thread / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            return True
    return False


def bindable(port: int) -> bool:
    """A restarted node could listen here (SO_REUSEADDR, as aiohttp binds)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


def wait_api(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status, _ = http_json(f"{url}/v1/status")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def test_sigkill_of_the_node_ends_its_proof_workers_and_frees_its_ports(tmp_path: Path) -> None:
    world = World()
    config = write_network(tmp_path, world)[0]
    settings = load_node_settings(config)
    ports = (settings.api.port, settings.peer.listen_port)
    node = start_node(config, tmp_path / "node0.log")
    workers: set[int] = set()
    try:
        url = api_url(config)
        wait_api(url)
        issue = world.issue(world.bank_a, USD, [world.alice.plan(5)])
        status, body = submit(url, issue.encode())  # its range proof goes to the pool
        assert status == 202, body
        workers = children_of(node.pid)
        assert len(workers) >= settings.node.proof_workers, workers
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=10)
        deadline = time.monotonic() + GONE_WITHIN_S
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = {w for w in workers if alive(w)}
        assert survivors == set(), f"proof workers {survivors} outlived their node"
        # The last socket closes as the kernel finishes tearing the process down.
        while not all(bindable(port) for port in ports) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(bindable(port) for port in ports), f"ports {ports} still held"
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        for worker in workers:
            if alive(worker):
                os.kill(worker, signal.SIGKILL)
