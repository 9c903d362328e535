"""The transport's dial loop survives an unexpected exception from one dial.

Each peer's dial loop is a task nobody awaits: an exception other than the
connection errors ``_dial_once`` handles ended it silently, and the node never
dialed that peer again. It is logged and the loop dials again after back-off.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ledger.identity import SigningIdentity
from node.peer_config import PeerLinkConfig
from node.transport import PeerTransport


class SurpriseError(Exception):
    pass


def test_an_unexpected_exception_in_a_dial_is_logged_and_the_peer_is_dialed_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    identities = [SigningIdentity.from_seed(bytes([i]) * 32) for i in range(4)]
    config = PeerLinkConfig(
        listen_host="127.0.0.1",
        listen_port=0,
        peer_endpoints=tuple(f"127.0.0.1:{9000 + i}" for i in range(4)),
        tls=None,
        allow_plain=True,
        reconnect_initial_ms=1,
        reconnect_max_ms=2,
    )
    transport = PeerTransport(
        config, identities[0], b"\x01" * 32, tuple(i.public_key for i in identities)
    )
    dials: list[int] = []

    async def dial_once(link: object, url: str) -> bool:
        dials.append(len(dials))
        if len(dials) == 1:
            raise SurpriseError("not a connection error")
        transport._stopping = True
        return True

    transport._dial_once = dial_once  # type: ignore[method-assign]

    async def scenario() -> None:
        await asyncio.wait_for(transport._dial_loop(transport._links[1]), 5)

    with caplog.at_level(logging.ERROR, logger="veil.node.transport"):
        asyncio.run(scenario())
    assert dials == [0, 1]
    assert "dialing 1 failed unexpectedly" in caplog.text and "SurpriseError" in caplog.text
