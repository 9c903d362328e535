"""The transport's dial loop: it survives an unexpected exception from one dial, and
only a session that lasted resets its back-off.

Each peer's dial loop is a task nobody awaits: an exception other than the
connection errors ``_dial_once`` handles ended it silently, and the node never
dialed that peer again. It is logged and the loop dials again after back-off.

A member that authenticates and hangs up at once was redialed every 50-100 ms
forever, since any authenticated dial reset the back-off.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

import node.transport
from ledger.identity import SigningIdentity
from node.peer_config import PeerLinkConfig
from node.transport import PeerTransport


def _transport(**config: int) -> PeerTransport:
    """Validator 0 of four, never started: only its dial loop runs."""
    identities = [SigningIdentity.from_seed(bytes([i]) * 32) for i in range(4)]
    links = PeerLinkConfig(
        listen_host="127.0.0.1",
        listen_port=0,
        peer_endpoints=tuple(f"127.0.0.1:{9000 + i}" for i in range(4)),
        tls=None,
        allow_plain=True,
        **config,
    )
    return PeerTransport(
        links, identities[0], b"\x01" * 32, tuple(i.public_key for i in identities)
    )


class SurpriseError(Exception):
    pass


def test_an_unexpected_exception_in_a_dial_is_logged_and_the_peer_is_dialed_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = _transport(reconnect_initial_ms=1, reconnect_max_ms=2)
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


@pytest.mark.parametrize(
    ("sessions_s", "failures"),
    [
        # never authenticated: the back-off grows
        ([None, None, None], [1, 2, 3]),
        # authenticated and hung up at once: grows too, where it was reset before
        ([0.01, 0.01, 0.01, 0.01], [1, 2, 3, 4]),
        # a session that outlived a heartbeat interval (here 1 s) resets it
        ([None, 0.5, 1.0, None, 0.0, 30.0], [1, 2, 0, 1, 2, 0]),
    ],
)
def test_only_a_session_that_outlived_a_heartbeat_resets_the_back_off(
    monkeypatch: pytest.MonkeyPatch, sessions_s: list[float | None], failures: list[int]
) -> None:
    transport = _transport(heartbeat_ms=1_000)
    script = iter(sessions_s)
    seen: list[int] = []

    async def dial_once(link: object, url: str) -> float | None:
        session_s = next(script)
        if len(seen) == len(sessions_s) - 1:
            transport._stopping = True
        return session_s

    def delay_ms(count: int, **_: object) -> float:
        seen.append(count)
        return 0.0

    transport._dial_once = dial_once  # type: ignore[method-assign]
    monkeypatch.setattr(node.transport, "backoff_delay_ms", delay_ms)

    async def scenario() -> None:
        await asyncio.wait_for(transport._dial_loop(transport._links[1]), 5)

    asyncio.run(scenario())
    assert seen == failures
