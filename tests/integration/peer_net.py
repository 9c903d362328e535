"""Helpers for peer-transport tests: a CA, certificates, keys and free ports."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledger.identity import SigningIdentity
from node.peer_config import PeerLinkConfig, PeerTlsFiles
from node.tls import create_ca, issue_node_certificate

CHAIN = hashlib.sha256(b"peer transport test chain").digest()
OTHER_CHAIN = hashlib.sha256(b"some other chain").digest()
IDENTITIES = [SigningIdentity.from_seed(bytes([i + 1]) * 32) for i in range(5)]
VALIDATORS = tuple(identity.public_key for identity in IDENTITIES[:4])
OUTSIDER = IDENTITIES[4]


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@dataclass
class Pki:
    nodes: list[PeerTlsFiles]
    outsider: PeerTlsFiles


def make_pki(directory: Path) -> Pki:
    ca = create_ca(directory / "ca")
    nodes = [issue_node_certificate(ca, directory / "certs", name=f"node{i}") for i in range(4)]
    outsider = issue_node_certificate(ca, directory / "certs", name="outsider")
    return Pki(nodes, outsider)


def link_config(
    index: int, ports: list[int], tls: PeerTlsFiles | None, **overrides: object
) -> PeerLinkConfig:
    settings: dict[str, object] = {
        "listen_host": "127.0.0.1",
        "listen_port": ports[index],
        "peer_endpoints": tuple(f"127.0.0.1:{port}" for port in ports),
        "tls": tls,
        "allow_plain": tls is None,
        "reconnect_initial_ms": 20,
        "reconnect_max_ms": 200,
        "handshake_timeout_ms": 2_000,
    }
    settings.update(overrides)
    return PeerLinkConfig(**settings)  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
