"""``up --netns``: every node in its own Linux network namespace, joined by one bridge (issue 12).

Per devnet (names derived from its directory, so parallel runs never collide):

- a bridge ``<prefix>br`` on the host, holding ``10.77.X.254/24`` so the APIs are
  reachable from the host;
- per node ``i`` a namespace ``<prefix>-n<i>`` and a veth pair: ``<prefix>h<i>`` on
  the bridge, ``<prefix>p<i>`` inside the namespace with ``10.77.X.(i+1)/24``.

The namespaces have no route but their /24: a node reaches only the others over
the bridge. Everything is recorded in ``netns.json`` in the devnet directory
BEFORE it is made, so ``down`` removes it all even after a crash mid-setup (a
recorded name that was never made is skipped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

JOURNAL_NAME: Final = "netns.json"
SUBNET_PREFIX: Final = "10.77"
HOST_OCTET: Final = 254
IP_TIMEOUT_S: Final = 20.0


class NetnsError(Exception):
    """Namespaces cannot be made or used here; one line saying why."""


def require_netns_tools() -> None:
    """Root and iproute2, or a clear refusal."""
    if os.geteuid() != 0:
        raise NetnsError("--netns needs root (it creates network namespaces, veths and a bridge)")
    if shutil.which("ip") is None:
        raise NetnsError("--netns needs the `ip` command of iproute2; install iproute2")


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run ``ip ARGS`` (inside ``namespace`` if given); its stdout, or ``NetnsError``."""
    command = ["ip", *(["netns", "exec", namespace, "ip"] if namespace else []), *args]
    return run_tool(command, check=check)


def run_tool(command: list[str], *, check: bool = True) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed tools, our own arguments
            command, capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"`{' '.join(command)}` failed: {exc}") from None
    if check and done.returncode != 0:
        raise NetnsError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout


def devnet_prefix(root: Path) -> str:
    """``v`` + 6 hex digits of the directory's absolute path: short enough for the
    15-character interface names, distinct per devnet directory."""
    return "v" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:6]


@dataclass(frozen=True, slots=True)
class NetnsLayout:
    prefix: str
    subnet_octet: int
    nodes: int

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    def namespace(self, index: int) -> str:
        return f"{self.prefix}-n{index}"

    def host_veth(self, index: int) -> str:
        return f"{self.prefix}h{index}"

    def node_veth(self, index: int) -> str:
        return f"{self.prefix}p{index}"

    def address(self, index: int) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet_octet}.{index + 1}"

    @property
    def host_address(self) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet_octet}.{HOST_OCTET}"


def layout_for_hosts(root: Path, hosts: tuple[str, ...]) -> NetnsLayout:
    """The layout an existing devnet's genesis addresses imply."""
    octets = {h.rsplit(".", 2)[-2] for h in hosts}
    if len(octets) != 1 or not all(h.startswith(SUBNET_PREFIX + ".") for h in hosts):
        raise NetnsError(f"{root}: the genesis addresses {list(hosts)} are not one --netns subnet")
    return NetnsLayout(devnet_prefix(root), int(octets.pop()), len(hosts))


def free_subnet_octet(root: Path) -> int:
    """A 10.77.X.0/24 no host interface uses yet, starting from the directory's hash."""
    used = ip("-4", "-o", "addr", "show")
    start = int(hashlib.sha256(str(root.resolve()).encode()).hexdigest()[6:10], 16) % 250
    for step in range(250):
        octet = (start + step) % 250
        if f" {SUBNET_PREFIX}.{octet}." not in used:
            return octet
    raise NetnsError(f"every {SUBNET_PREFIX}.X.0/24 is in use on this host")


class Journal:
    """``netns.json``: what this devnet made (or was about to), in order."""

    def __init__(self, root: Path) -> None:
        self.path = root / JOURNAL_NAME

    def read(self) -> list[dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise NetnsError(
                f"{self.path} is unreadable ({exc}); remove what it made by hand"
            ) from None
        made = data.get("made") if isinstance(data, dict) else None
        if not isinstance(made, list):
            raise NetnsError(f"{self.path} has no list 'made'")
        return [m for m in made if isinstance(m, dict)]

    def record(self, kind: str, name: str) -> None:
        """Written (atomically) before the thing is made."""
        made = self.read()
        made.append({"kind": kind, "name": name})
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"made": made}, indent=1), encoding="utf-8")
        temporary.replace(self.path)

    def exists(self) -> bool:
        return self.path.exists()


def _existing_namespaces() -> set[str]:
    return {line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return bool(ip("-o", "link", "show", "dev", name, check=False).strip())


def create(root: Path, layout: NetnsLayout) -> None:
    """Make the bridge, namespaces and veths of ``layout``, each recorded first."""
    require_netns_tools()
    journal = Journal(root)
    existing = _existing_namespaces()
    if not _link_exists(layout.bridge):
        journal.record("link", layout.bridge)
        ip("link", "add", layout.bridge, "type", "bridge")
    ip("addr", "replace", f"{layout.host_address}/24", "dev", layout.bridge)
    ip("link", "set", layout.bridge, "up")
    for index in range(layout.nodes):
        namespace = layout.namespace(index)
        if namespace not in existing:
            journal.record("netns", namespace)
            ip("netns", "add", namespace)
        ip("link", "set", "lo", "up", namespace=namespace)
        host_end, node_end = layout.host_veth(index), layout.node_veth(index)
        if not _link_exists(host_end):
            journal.record("link", host_end)
            ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
            ip("link", "set", node_end, "netns", namespace)
        ip("link", "set", host_end, "master", layout.bridge)
        ip("link", "set", host_end, "up")
        ip("addr", "replace", f"{layout.address(index)}/24", "dev", node_end, namespace=namespace)
        ip("link", "set", node_end, "up", namespace=namespace)


def _kill_namespace_processes(namespace: str) -> None:
    """Whatever still runs in a namespace this devnet made (its own nodes)."""
    for pid in ip("netns", "pids", namespace, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def destroy(root: Path) -> list[str]:
    """Remove everything the journal lists (missing things are skipped); the names removed."""
    journal = Journal(root)
    made = journal.read()
    if not made:
        journal.path.unlink(missing_ok=True)
        return []
    require_netns_tools()
    namespaces = _existing_namespaces()
    removed: list[str] = []
    for entry in reversed(made):
        kind, name = entry.get("kind"), entry.get("name", "")
        if kind == "netns" and name in namespaces:
            _kill_namespace_processes(name)
            ip("netns", "del", name)  # takes the veth end inside with it
            removed.append(name)
        elif kind == "link" and _link_exists(name):
            ip("link", "del", name)
            removed.append(name)
    journal.path.unlink(missing_ok=True)
    return removed


def leftovers(root: Path) -> list[str]:
    """Names the journal lists that still exist (empty after a clean ``destroy``)."""
    namespaces = _existing_namespaces()
    left = []
    for entry in Journal(root).read():
        name = entry.get("name", "")
        if (entry.get("kind") == "netns" and name in namespaces) or (
            entry.get("kind") == "link" and _link_exists(name)
        ):
            left.append(name)
    return left


def exec_prefix(namespace: str) -> list[str]:
    return ["ip", "netns", "exec", namespace]
