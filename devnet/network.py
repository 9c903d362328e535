"""The files and processes of a local devnet (issue 10): keys, genesis, node.toml, TLS, pids.

Layout under the devnet directory (default ``.devnet/``):
``banks/bankN/`` (validator N's signing key, memo key, wallet file), ``regulator/``,
``clients/<name>/``, ``genesis.json``, ``tls/`` (the CA and one certificate per
node), ``nodes/N/`` (data, ``node.toml``, ``node.log``, ``pid``). Keys are
0600 and never overwritten: a second ``up`` reuses them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from client.wallet_file import WalletDir
from devnet.netns import NetnsLayout, exec_prefix, layout_for_hosts
from ledger.genesis import (
    DEFAULT_PARAMS,
    AssetInfo,
    Genesis,
    MemberInfo,
    ValidatorInfo,
    load_genesis,
    save_genesis,
)
from node.settings import ApiSection, NodeSection, NodeSettings, PeerSection, render_node_toml
from node.tls import CaFiles, create_ca, issue_node_certificate

DEFAULT_DIR: Final = Path(".devnet")
DEFAULT_BASE_PORT: Final = 8700
LOOPBACK: Final = "127.0.0.1"
PEER_PORT_OFFSET: Final = 1000
"""Node N's API listens on base+N, its peer port on base+1000+N."""
ALLOWED_NODE_COUNTS: Final = (4, 7, 10)
DEMO_CLIENTS: Final = ("firm-x", "firm-y")
STOP_TIMEOUT_S: Final = 10.0
GENESIS_TIME_MS: Final = 1_767_225_600_000  # 2026-01-01, fixed so a devnet's chain id is stable


class DevnetError(Exception):
    """A devnet command that cannot proceed, with one line saying why."""


def asset_symbol(index: int) -> str:
    return f"USD.B{index}"


def asset_id(index: int) -> bytes:
    return hashlib.sha256(f"veil-devnet/asset/{asset_symbol(index)}".encode()).digest()


@dataclass(frozen=True, slots=True)
class Devnet:
    root: Path
    nodes: int
    base_port: int
    hosts: tuple[str, ...] = ()
    """Node i's address; empty: every node on 127.0.0.1. ``--netns`` gives each its own."""

    def host(self, index: int) -> str:
        return self.hosts[index] if self.hosts else LOOPBACK

    @property
    def netns_layout(self) -> NetnsLayout | None:
        """The namespaces the nodes run in (``up --netns``), or None on 127.0.0.1."""
        if not self.hosts:
            return None
        return layout_for_hosts(self.root, self.hosts)

    def bank_dir(self, index: int) -> Path:
        return self.root / "banks" / f"bank{index}"

    def client_dir(self, name: str) -> Path:
        return self.root / "clients" / name

    @property
    def regulator_dir(self) -> Path:
        return self.root / "regulator"

    def node_dir(self, index: int) -> Path:
        return self.root / "nodes" / str(index)

    def log_file(self, index: int) -> Path:
        return self.node_dir(index) / "node.log"

    def pid_file(self, index: int) -> Path:
        return self.node_dir(index) / "pid"

    def config_file(self, index: int) -> Path:
        return self.node_dir(index) / "node.toml"

    def url(self, index: int) -> str:
        return f"http://{self.host(index)}:{self.base_port + index}"

    def peer_endpoint(self, index: int) -> str:
        return f"{self.host(index)}:{self.base_port + PEER_PORT_OFFSET + index}"

    # --- files ---------------------------------------------------------------------------

    def _wallet(self, path: Path) -> WalletDir:
        if (path / "signing.key").exists():
            return WalletDir.open(path, read_state=False)
        return WalletDir.create(path)

    def write_files(self) -> None:
        """Keys, genesis, TLS and node.toml; what exists already is kept."""
        self.root.mkdir(parents=True, exist_ok=True)
        banks = [self._wallet(self.bank_dir(i)) for i in range(self.nodes)]
        regulator = self._wallet(self.regulator_dir)
        for name in DEMO_CLIENTS:
            self._wallet(self.client_dir(name))
        genesis_path = self.root / "genesis.json"
        if not genesis_path.exists():
            genesis = Genesis(
                version=1,
                chain_name="veil-devnet",
                genesis_time_ms=GENESIS_TIME_MS,
                validators=tuple(
                    ValidatorInfo(f"bank{i}", b.public_key, self.url(i), self.peer_endpoint(i))
                    for i, b in enumerate(banks)
                ),
                members=tuple(
                    MemberInfo(f"Bank {i}", b.public_key, b.memo_public_key)
                    for i, b in enumerate(banks)
                ),
                accounts=(),
                assets=tuple(
                    AssetInfo(asset_id(i), asset_symbol(i), b.public_key)
                    for i, b in enumerate(banks)
                ),
                auditor_memo_public_key=regulator.memo_public_key,
                params=DEFAULT_PARAMS,
            )
            save_genesis(genesis, genesis_path)
        genesis = load_genesis(genesis_path)
        if len(genesis.validators) != self.nodes:
            raise DevnetError(
                f"{genesis_path} has {len(genesis.validators)} validators, not {self.nodes}; "
                "use `down --purge` to start a different network"
            )
        ca = CaFiles(self.root / "tls" / "ca.pem", self.root / "tls" / "ca.key")
        if not ca.cert_file.exists():
            ca = create_ca(self.root / "tls")
        for index in range(self.nodes):
            config = self.config_file(index)
            if config.exists():
                continue
            tls_dir = self.root / "tls"
            name = f"node{index}"
            if not (tls_dir / f"{name}.pem").exists():
                issue_node_certificate(ca, tls_dir, name=name, ip_addresses=(self.host(index),))
            settings = NodeSettings(
                node=NodeSection(
                    genesis=str(genesis_path.resolve()),
                    key=str((self.bank_dir(index) / "signing.key").resolve()),
                    data_dir=str(self.node_dir(index).resolve() / "data"),
                ),
                api=ApiSection(host=self.host(index), port=self.base_port + index),
                peer=PeerSection(
                    listen_host=self.host(index),
                    listen_port=self.base_port + PEER_PORT_OFFSET + index,
                    endpoints=[self.peer_endpoint(i) for i in range(self.nodes)],
                    tls_cert=str((tls_dir / f"{name}.pem").resolve()),
                    tls_key=str((tls_dir / f"{name}.key").resolve()),
                    tls_ca=str(ca.cert_file.resolve()),
                ),
            )
            self.node_dir(index).mkdir(parents=True, exist_ok=True)
            config.write_text(render_node_toml(settings), encoding="utf-8")

    # --- processes -----------------------------------------------------------------------

    def pid(self, index: int) -> int | None:
        """Node ``index``'s process id if it is running."""
        try:
            pid = int(self.pid_file(index).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid if not _is_zombie(pid) else None

    def running(self) -> list[int]:
        return [i for i in range(self.nodes) if self.pid(i) is not None]

    def start(
        self, index: int, extra_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
    ) -> int:
        """Start node ``index`` (``extra_args`` go to ``node run``); its pid."""
        if self.pid(index) is not None:
            raise DevnetError(f"node {index} is already running (pid {self.pid(index)})")
        if not self.config_file(index).exists():
            raise DevnetError(f"no node {index} in {self.root}; run `python -m devnet up` first")
        env = dict(os.environ, **(extra_env or {}))
        source_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
        config = str(self.config_file(index))
        command = [sys.executable, "-m", "node", "run", "--config", config, *extra_args]
        layout = self.netns_layout
        if layout is not None:
            command = exec_prefix(layout.namespace(index)) + command
        with self.log_file(index).open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the shell does not reach the nodes
            )
        self.pid_file(index).write_text(f"{process.pid}\n")
        return process.pid

    def kill(self, index: int) -> None:
        pid = self.pid(index)
        if pid is None:
            raise DevnetError(f"node {index} is not running")
        _kill_group(pid)
        _wait_gone(pid, STOP_TIMEOUT_S)
        _wait_group_gone(pid, STOP_TIMEOUT_S)

    def stop_all(self) -> None:
        """SIGTERM every node, then SIGKILL what is left after ``STOP_TIMEOUT_S``."""
        pids = [p for p in (self.pid(i) for i in range(self.nodes)) if p is not None]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for pid in pids:
            _wait_gone(pid, max(0.0, deadline - time.monotonic()))
            _kill_group(pid)  # what SIGTERM left, and any orphaned proof-pool worker
            _wait_gone(pid, STOP_TIMEOUT_S)
        for index in range(self.nodes):
            self.pid_file(index).unlink(missing_ok=True)


def _kill_group(pid: int) -> None:
    """SIGKILL the node's whole process group (its own session, see ``start``): a
    SIGKILLed node leaves its proof-pool workers alive, and they hold its listening
    sockets, so a restarted node would find its peer port in use."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _live_group_members(pgid: int) -> list[int]:
    """Pids of the process group that are not zombies (a zombie holds no files)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    """After SIGKILL of the group: wait until every member is gone, not only its leader.
    Until then a proof worker may still hold the node's files and sockets (an unmount
    of its data directory is "busy", a restart finds its port taken)."""
    deadline = time.monotonic() + timeout_s
    while _live_group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
            if reaped == pid:
                return True
        except ChildProcessError:
            pass  # not our child: poll it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _is_zombie(pid):
            return True
        time.sleep(0.05)
    return False


def open_devnet(
    root: Path,
    base_port: int | None = None,
    nodes: int | None = None,
    hosts: tuple[str, ...] = (),
) -> Devnet:
    """The devnet in ``root``: its node count, base port and addresses come from its files
    when it has them (``hosts`` is for a new one)."""
    genesis_path = root / "genesis.json"
    if genesis_path.exists():
        try:
            genesis = load_genesis(genesis_path)
        except (OSError, ValueError) as exc:
            raise DevnetError(f"{genesis_path}: unreadable ({exc})") from None
        endpoints = [urlsplit(v.http_endpoint) for v in genesis.validators]
        port = endpoints[0].port or DEFAULT_BASE_PORT
        hosts = tuple(e.hostname or LOOPBACK for e in endpoints)
        on_loopback = all(h == LOOPBACK for h in hosts)
        return Devnet(root, len(genesis.validators), port, () if on_loopback else hosts)
    return Devnet(root, nodes or 4, base_port or DEFAULT_BASE_PORT, hosts)
