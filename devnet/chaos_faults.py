"""Faults the kernel makes, inside a ``--netns`` devnet's namespaces, and a node's full disk.

- partitions: ``prohibit`` routes in a namespace to the addresses of the nodes on the
  other side (the API stays reachable from the host over the bridge);
- link flaps: the node's end of its veth down, then up;
- latency and loss: ``tc netem`` on the node's veth (both need ``sch_netem`` in the
  kernel); without it, latency goes through a delaying relay (``devnet.delay_relay``)
  that nftables redirects the node's peer connections to, and loss through an
  nftables ``numgen`` drop rule.
- disk: the node's data directory moved onto a tmpfs just big enough, then filled.

``heal`` undoes every network fault this object made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devnet import netns
from devnet.delay_relay import RELAY_MARK
from devnet.netns import NetnsError, NetnsLayout

NFT_TABLE = "veil_chaos"
NFT_DELAY_TABLE = "veil_chaos_delay"
RELAY_PORT = 7999
RELAY_START_TIMEOUT_S = 120.0
"""A Python start on a loaded 2-core machine took over 30 s."""


class ChaosError(Exception):
    """A fault this machine cannot make; one line saying why."""


@dataclass(slots=True)
class NetworkFaults:
    layout: NetnsLayout
    _routes: list[tuple[int, str]] = field(default_factory=list)
    _shaped: set[int] = field(default_factory=set)
    _nft: set[int] = field(default_factory=set)
    _nft_delay: set[int] = field(default_factory=set)
    _down: set[int] = field(default_factory=set)
    _relays: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _ip(self, index: int, *args: str, check: bool = True) -> str:
        return netns.ip(*args, namespace=self.layout.namespace(index), check=check)

    def partition(self, groups: list[list[int]]) -> None:
        """Cut every link between nodes of different groups."""
        side = {node: g for g, group in enumerate(groups) for node in group}
        for a, side_a in side.items():
            for b, side_b in side.items():
                if side_a != side_b:
                    address = self.layout.address(b)
                    self._ip(a, "route", "add", "prohibit", f"{address}/32")
                    self._routes.append((a, address))

    def link_down(self, index: int) -> None:
        self._ip(index, "link", "set", self.layout.node_veth(index), "down")
        self._down.add(index)

    def link_up(self, index: int) -> None:
        self._ip(index, "link", "set", self.layout.node_veth(index), "up")
        self._down.discard(index)

    def netem(self, index: int, *spec: str) -> None:
        """``tc qdisc replace ... netem SPEC`` on the node's veth, or ``ChaosError``."""
        command = [*netns.exec_prefix(self.layout.namespace(index)), "tc", "qdisc", "replace"]
        command += ["dev", self.layout.node_veth(index), "root", "netem", *spec]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise ChaosError(
                f"tc netem failed ({done.stderr.strip()}): this kernel lacks sch_netem "
                "(CONFIG_NET_SCH_NETEM); latency needs it"
            )
        self._shaped.add(index)

    def delay(
        self, index: int, base_ms: int, jitter_ms: int, peer_ports: list[int], seed: int
    ) -> str:
        """Delay the node's outgoing traffic: ``tc netem delay``, or without ``sch_netem``
        a delaying relay its outgoing peer connections are redirected through (nftables);
        which one was used."""
        try:
            self.netem(index, "delay", f"{base_ms}ms", f"{jitter_ms}ms")
            return "netem"
        except ChaosError:
            if shutil.which("nft") is None:
                raise ChaosError(
                    "latency needs tc netem (sch_netem) or nftables (`nft`) for the relay"
                ) from None
        namespace = self.layout.namespace(index)
        relay = [*netns.exec_prefix(namespace), sys.executable, "-m", "devnet.delay_relay"]
        relay += ["--port", str(RELAY_PORT), "--delay-ms", str(base_ms)]
        relay += ["--jitter-ms", str(jitter_ms), "--seed", str(seed)]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        self._relays[index] = subprocess.Popen(  # noqa: S603 - our own module
            relay, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_listening(index)
        ports = ", ".join(str(p) for p in peer_ports)
        subnet = f"{netns.SUBNET_PREFIX}.{self.layout.subnet_octet}.0/24"
        rules = (
            f"add table ip {NFT_DELAY_TABLE}\n"
            f"add chain ip {NFT_DELAY_TABLE} out {{ type nat hook output priority -100 ; }}\n"
            f"add rule ip {NFT_DELAY_TABLE} out ip daddr {subnet} tcp dport {{ {ports} }} "
            f"meta mark != {RELAY_MARK} redirect to :{RELAY_PORT}\n"
        )
        self._nft_apply(index, rules)
        self._nft_delay.add(index)
        # Established links skip the redirect: cut them, the node redials through the relay.
        netns.run_tool([*netns.exec_prefix(namespace), "ss", "-K", "dst", subnet], check=False)
        return "relay"

    def _wait_listening(self, index: int) -> None:
        """Until the relay listens: redirected before that, the node's dials are refused."""
        deadline = time.monotonic() + RELAY_START_TIMEOUT_S
        command = [*netns.exec_prefix(self.layout.namespace(index)), "ss", "-Hltn"]
        while time.monotonic() < deadline:
            if f":{RELAY_PORT} " in netns.run_tool(command, check=False):
                return
            if self._relays[index].poll() is not None:
                break
            time.sleep(0.1)
        raise ChaosError(f"the delay relay in {self.layout.namespace(index)} did not start")

    def _nft_apply(self, index: int, rules: str) -> None:
        command = [*netns.exec_prefix(self.layout.namespace(index)), "nft", "-f", "-"]
        done = subprocess.run(  # noqa: S603
            command, input=rules, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ChaosError(f"nft failed: {done.stderr.strip()}")

    def loss(self, index: int, percent: int) -> None:
        """Drop ``percent`` % of the node's outgoing packets to the other nodes."""
        try:
            self.netem(index, "loss", f"{percent}%")
            return
        except ChaosError:
            if shutil.which("nft") is None:
                raise ChaosError(
                    "loss needs tc netem (sch_netem) or nftables (`nft`); neither is here"
                ) from None
        subnet = f"{netns.SUBNET_PREFIX}.{self.layout.subnet_octet}.0/24"
        rules = (
            f"add table inet {NFT_TABLE}\n"
            f"add chain inet {NFT_TABLE} out {{ type filter hook output priority 0 ; }}\n"
            f"flush chain inet {NFT_TABLE} out\n"
            f"add rule inet {NFT_TABLE} out ip daddr {subnet} "
            f"numgen random mod 100 < {percent} drop\n"
        )
        self._nft_apply(index, rules)
        self._nft.add(index)

    def heal(self) -> None:
        for index, address in self._routes:
            self._ip(index, "route", "del", "prohibit", f"{address}/32", check=False)
        self._routes.clear()
        for index in self._shaped:
            veth = self.layout.node_veth(index)
            netns.run_tool(
                [
                    *netns.exec_prefix(self.layout.namespace(index)),
                    "tc",
                    "qdisc",
                    "del",
                    "dev",
                    veth,
                    "root",
                ],
                check=False,
            )
        self._shaped.clear()
        for index in self._nft:
            netns.run_tool(
                [
                    *netns.exec_prefix(self.layout.namespace(index)),
                    "nft",
                    "delete",
                    "table",
                    "inet",
                    NFT_TABLE,
                ],
                check=False,
            )
        self._nft.clear()
        for index in self._nft_delay:
            netns.run_tool(
                [
                    *netns.exec_prefix(self.layout.namespace(index)),
                    "nft",
                    "delete",
                    "table",
                    "ip",
                    NFT_DELAY_TABLE,
                ],
                check=False,
            )
        self._nft_delay.clear()
        for relay in self._relays.values():  # its links drop; the nodes redial directly
            relay.terminate()
            relay.wait(timeout=10)
        self._relays.clear()
        for index in list(self._down):
            self.link_up(index)


def require_netns(layout: NetnsLayout | None, scenario: str) -> NetnsLayout:
    if layout is None:
        raise ChaosError(f"scenario {scenario} needs a devnet made with `up --netns`")
    try:
        netns.require_netns_tools()
    except NetnsError as exc:
        raise ChaosError(str(exc)) from None
    return layout


@dataclass(slots=True)
class SmallDisk:
    """A node's data directory moved onto a tmpfs (the node must be stopped around
    ``mount`` and ``unmount``); ``fill`` takes every free byte, ``clear`` gives it back."""

    data_dir: Path
    headroom_bytes: int = 16 * 1024 * 1024
    mounted: bool = False
    filler: Path | None = None

    def mount(self) -> None:
        used = sum(p.stat().st_size for p in self.data_dir.rglob("*") if p.is_file())
        size = used + self.headroom_bytes
        with tempfile.TemporaryDirectory(prefix="veil-chaos-disk-") as keep:
            copy = Path(keep) / "data"
            shutil.copytree(self.data_dir, copy)
            _empty(self.data_dir)  # so nothing stale is left under the mount
            _run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(self.data_dir)])
            self.mounted = True
            shutil.copytree(copy, self.data_dir, dirs_exist_ok=True)

    def fill(self) -> None:
        self.filler = self.data_dir / "chaos-filler"
        with self.filler.open("wb", buffering=0) as out:
            for size in (1 << 20, 4096, 1):
                while True:
                    try:
                        out.write(b"\0" * size)
                    except OSError:
                        break

    def clear(self) -> None:
        if self.filler is not None:
            self.filler.unlink(missing_ok=True)
            self.filler = None

    def unmount(self) -> None:
        """Copy the data back onto the real disk and unmount."""
        if not self.mounted:
            return
        self.clear()
        with tempfile.TemporaryDirectory(prefix="veil-chaos-disk-") as keep:
            copy = Path(keep) / "data"
            shutil.copytree(self.data_dir, copy)
            _unmount_when_free(self.data_dir)
            self.mounted = False
            shutil.copytree(copy, self.data_dir, dirs_exist_ok=True)


def _holders(directory: Path) -> list[str]:
    """``pid name`` of every process with a file or its working directory under ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [proc / "cwd", *(proc / "fd").iterdir()]
            paths = [os.readlink(link) for link in links]
            name = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if any(p == str(directory) or p.startswith(f"{directory}/") for p in paths):
            found.append(f"{proc.name} {name}")
    return found


def _unmount_when_free(directory: Path, timeout_s: float = 10.0) -> None:
    """Unmount, retrying while a killed node's processes finish closing their files."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = subprocess.run(  # noqa: S603
            ["umount", str(directory)],  # noqa: S607 (as _run: the system's umount)
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise ChaosError(
                f"`umount {directory}` failed: {done.stderr.strip()} "
                f"(held by: {', '.join(_holders(directory)) or 'no process found'})"
            )
        time.sleep(0.2)


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise ChaosError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
