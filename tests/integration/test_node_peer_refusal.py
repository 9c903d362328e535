"""Strangers on a real validator's peer port (``veil node run``, TLS on, as in production).

Both hold a certificate of the consortium CA, so they get through TLS to the
ed25519 handshake: a key that is no validator, and a validator's key on
another chain. Each is refused at its ``Hello``; a consensus frame sent right
behind the ``Hello`` is never read; ``/metrics`` counts the refusal; the
network keeps committing.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path

from ledger.build import build_attest
from ledger.identity import SigningIdentity
from node.peer_config import PeerLinkConfig
from node.peer_frames import ConsensusFrame, PeerFault, encode_frame
from node.tls import client_context, issue_node_certificate
from node.transport import PeerTransport
from tests.integration.junk_client import hello, send_junk, ws_message
from tests.integration.node_processes import (
    Cluster,
    Funded,
    http_json,
    metric_value,
    network_ca,
    peer_port,
    submit,
    wait_converged,
)
from tests.node_world import validator_identities

OTHER_CHAIN = hashlib.sha256(b"a chain that is not this one").digest()
LINK_FAULTS = "veil_peer_link_faults_total"


def link_faults(url: str, kind: PeerFault) -> float:
    return metric_value(url, LINK_FAULTS, f'kind="{kind.value}"')


def frames_read_before_a_handshake(url: str) -> float:
    """What a consensus frame from an unauthenticated peer would have raised."""
    return (
        metric_value(url, "veil_faults_total", 'kind="undecodable_message"')
        + link_faults(url, PeerFault.FRAME_BEFORE_HANDSHAKE)
        + link_faults(url, PeerFault.UNEXPECTED_FRAME)
    )


async def until(predicate: object, what: str, timeout_s: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await asyncio.to_thread(predicate):  # type: ignore[arg-type]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_a_non_member_and_a_wrong_chain_are_refused_before_any_consensus_frame(
    tmp_path: Path, funded: Funded
) -> None:
    world = funded.world
    with Cluster(tmp_path, world) as cluster:
        await asyncio.to_thread(cluster.start)
        urls, ports = cluster.urls, [peer_port(c) for c in cluster.configs]
        ca = network_ca(tmp_path)
        outsider_tls = issue_node_certificate(ca, tmp_path / "tls", name="outsider")
        outsider = SigningIdentity.generate()
        # A non-member's Hello, and a consensus frame behind it in the same message.
        junk = encode_frame(ConsensusFrame(b"\xc1 never read"))
        for index in range(4):
            message = hello(outsider, world.chain_id, random.Random(index), True) + junk
            await send_junk(ports[index], client_context(outsider_tls), ws_message(message))
        for url in urls:
            assert link_faults(url, PeerFault.NOT_MEMBER) >= 1, url
        # Validator 3's own key, on another chain, through a real transport that dials
        # validators 0-2 and sends a consensus frame once it believes it is in.
        stranger_tls = issue_node_certificate(ca, tmp_path / "tls", name="stranger")
        config = PeerLinkConfig(
            listen_host="127.0.0.1",
            listen_port=0,
            peer_endpoints=tuple(f"127.0.0.1:{port}" for port in ports),
            tls=stranger_tls,
            reconnect_initial_ms=50,
            reconnect_max_ms=200,
        )
        validators = tuple(v.public_key for v in world.genesis.validators)
        identity = validator_identities(world)[3]
        async with PeerTransport(config, identity, OTHER_CHAIN, validators) as stranger:
            await until(
                lambda: all(link_faults(url, PeerFault.WRONG_CHAIN) >= 2 for url in urls[:3]),
                "validators 0-2 refused the other chain twice",
            )
            stranger.broadcast(ConsensusFrame(b"\xc1 never read either"))
            await asyncio.sleep(0.5)
            assert stranger.connected_peers() == frozenset()
            # It got through TLS: the refusal is the handshake's (each side sees the
            # other's chain id in its Hello), never a TLS failure.
            kinds = {kind for _, kind in stranger.fault_counts()}
            assert PeerFault.WRONG_CHAIN in kinds or PeerFault.REFUSED_BY_PEER in kinds, kinds
            assert PeerFault.TLS_FAILED not in kinds, kinds
        for url in urls:
            assert await asyncio.to_thread(frames_read_before_a_handshake, url) == 0, url
            status = (await asyncio.to_thread(http_json, f"{url}/v1/status"))[1]
            assert all(peer["connected"] for peer in status["peers"]), status  # type: ignore[union-attr]
        # The validators never stopped: the next tx commits on all four, in one block.
        nonce = world.next_nonce(world.bank_b)
        tx = build_attest(world.bank_b.identity, world.chain_id, "after", bytes(32), nonce=nonce)
        assert (await asyncio.to_thread(submit, urls[2], tx.encode()))[0] == 202
        code, body = await asyncio.to_thread(
            http_json, f"{urls[2]}/v1/txs/{tx.tx_id.hex()}?wait=commit&timeout_ms=20000"
        )
        assert (code, body["status"]) == (200, "committed"), body
        await asyncio.to_thread(wait_converged, cluster, list(cluster.indices))
