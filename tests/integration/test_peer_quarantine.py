"""A member that sends junk over its authenticated session is quarantined.

A fault closed the session, but the member could redial at once and send the
next junk frame, each one a decode of up to ``max_frame_bytes`` for us. Now
its handshakes are refused, and it is not dialed, for one second, then two,
doubling up to five minutes; then the link comes back by itself.
"""

from __future__ import annotations

import asyncio

from node.peer_config import QUARANTINE_FIRST_MS, QUARANTINE_FORGET_MS
from node.peer_frames import PeerFault
from node.transport import PeerTransport
from tests.integration.peer_net import CHAIN, IDENTITIES, VALIDATORS, free_ports, link_config, until

JUNK = (3).to_bytes(4, "big") + b"\xc1\xc1\xc1"  # a length-prefixed frame that is no msgpack


async def send_junk(byzantine: PeerTransport, to: int) -> None:
    """What a byzantine member's own code would do: raw bytes on its session."""
    session = byzantine._links[to].session
    assert session is not None
    await session.ws.send_bytes(JUNK)


async def test_junk_after_the_handshake_quarantines_the_member_then_the_link_returns() -> None:
    ports = free_ports(4)
    configs = [link_config(i, ports, None) for i in range(2)]
    async with (
        PeerTransport(configs[0], IDENTITIES[0], CHAIN, VALIDATORS) as honest,
        PeerTransport(configs[1], IDENTITIES[1], CHAIN, VALIDATORS) as byzantine,
    ):
        await until(lambda: 1 in honest.connected_peers(), "the link comes up")
        loop = asyncio.get_running_loop()

        await send_junk(byzantine, 0)
        junk_at = loop.time()
        await until(lambda: honest.is_quarantined(1), "the member is quarantined")
        await until(lambda: 1 not in honest.connected_peers(), "its session is closed")
        # It redials (after its dial grace and back-off) and is refused after its handshake.
        await until(
            lambda: honest.fault_counts().get((1, PeerFault.QUARANTINED), 0) >= 1,
            "a redial refused while quarantined",
        )
        assert honest.fault_counts()[(1, PeerFault.MALFORMED_FRAME)] == 1

        await until(lambda: 1 in honest.connected_peers(), "the link returns after the period")
        first_period_s = loop.time() - junk_at
        assert first_period_s >= QUARANTINE_FIRST_MS / 1000 * 0.95

        # A second offence soon after: twice as long.
        await send_junk(byzantine, 0)
        junk_at = loop.time()
        await until(lambda: honest.is_quarantined(1), "quarantined again")
        await until(lambda: 1 in honest.connected_peers(), "back again", timeout_s=10)
        assert loop.time() - junk_at >= 2 * QUARANTINE_FIRST_MS / 1000 * 0.95
        assert honest.fault_counts()[(1, PeerFault.MALFORMED_FRAME)] == 2


async def test_a_fault_that_honest_peers_can_cause_does_not_quarantine() -> None:
    """An oversize frame (operators may set max_frame_bytes apart) only closes the link."""
    ports = free_ports(4)
    small = link_config(0, ports, None, max_frame_bytes=64 << 10)
    async with (
        PeerTransport(small, IDENTITIES[0], CHAIN, VALIDATORS) as honest,
        PeerTransport(link_config(1, ports, None), IDENTITIES[1], CHAIN, VALIDATORS) as big,
    ):
        await until(lambda: 1 in honest.connected_peers(), "the link comes up")
        session = big._links[0].session
        assert session is not None
        await session.ws.send_bytes((128 << 10).to_bytes(4, "big") + bytes(128 << 10))
        await until(
            lambda: honest.fault_counts().get((1, PeerFault.OVERSIZE_FRAME), 0) >= 1,
            "the oversize frame is refused",
        )
        assert not honest.is_quarantined(1)
        await until(lambda: 1 in honest.connected_peers(), "the link comes back at once")
        assert (1, PeerFault.QUARANTINED) not in honest.fault_counts()


async def test_periods_double_per_offence_and_start_again_after_ten_quiet_minutes() -> None:
    transport = PeerTransport(link_config(0, free_ports(4), None), IDENTITIES[0], CHAIN, VALIDATORS)
    loop = asyncio.get_running_loop()
    link = transport._links[1]
    periods = []
    for _ in range(3):
        transport.quarantine(1, "junk")
        assert transport.is_quarantined(1)
        transport.quarantine(1, "more junk in the same period")  # not a new offence
        periods.append(round(link.quarantined_until - loop.time()))
        link.quarantined_until = loop.time()  # the period passes
    assert periods == [1, 2, 4]
    assert not transport.is_quarantined(1)
    link.last_offence -= QUARANTINE_FORGET_MS / 1000 + 1
    transport.quarantine(1, "junk after ten quiet minutes")
    assert round(link.quarantined_until - loop.time()) == QUARANTINE_FIRST_MS / 1000
