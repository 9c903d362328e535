"""Settings of the peer links, and the reconnect back-off they imply.

``node/main.py`` (``peer_link_config``) builds one from node.toml's ``[peer]``; every
field here is documented with its default in ``docs/operations.md``
("Peer links"). Pure: the transport passes in the random draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node.peer_frames import DEFAULT_MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, PeerFault

PEER_PATH = "/veil/peer/v1"
"""The WebSocket path validators dial on each other's peer port."""


@dataclass(frozen=True, slots=True)
class PeerTlsFiles:
    """The PEM files of a node's peer links (``node/tls.py`` can make them)."""

    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass(frozen=True, slots=True)
class PeerLinkConfig:
    """How this node listens for and dials the other validators.

    ``peer_endpoints[i]`` is validator ``i``'s ``host:port`` (genesis order);
    our own entry is ignored and an empty one is never dialed (that peer dials
    us). ``tls=None`` means plain links, refused unless ``allow_plain``.
    """

    listen_host: str
    listen_port: int
    peer_endpoints: tuple[str, ...]
    tls: PeerTlsFiles | None
    allow_plain: bool = False
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    queue_max_frames: int = 4096
    queue_max_bytes: int = 64 << 20
    inbound_queue_frames: int = 4096
    handshake_timeout_ms: int = 5_000
    reconnect_initial_ms: int = 100
    reconnect_max_ms: int = 5_000
    dial_grace_ms: int = 1_000
    heartbeat_ms: int = 5_000
    max_pending_handshakes: int = 64

    def __post_init__(self) -> None:
        if self.tls is None and not self.allow_plain:
            raise ValueError("peer links without TLS need allow_plain = true")
        if not 0 <= self.listen_port <= 65_535:
            raise ValueError(f"listen_port {self.listen_port} is not a port")
        for endpoint in self.peer_endpoints:
            if endpoint and split_endpoint(endpoint) is None:
                raise ValueError(f"peer endpoint {endpoint!r} is not host:port")
        if self.max_frame_bytes < MAX_HANDSHAKE_FRAME_BYTES:
            raise ValueError("max_frame_bytes must hold a handshake frame")
        if min(self.queue_max_frames, self.queue_max_bytes, self.inbound_queue_frames) < 1:
            raise ValueError("queue bounds must be positive")
        if self.queue_max_bytes < self.max_frame_bytes:
            raise ValueError("queue_max_bytes must hold one maximal frame")
        if not 0 < self.reconnect_initial_ms <= self.reconnect_max_ms:
            raise ValueError("need 0 < reconnect_initial_ms <= reconnect_max_ms")
        if self.max_pending_handshakes < 1:
            raise ValueError("max_pending_handshakes must be positive")
        if self.dial_grace_ms < 0:
            raise ValueError("dial_grace_ms must not be negative")
        if self.handshake_timeout_ms <= 0 or self.heartbeat_ms <= 0:
            raise ValueError("handshake_timeout_ms and heartbeat_ms must be positive")


def split_endpoint(endpoint: str) -> tuple[str, int] | None:
    """``("host", port)`` from ``"host:port"``, or ``None`` if it is not one."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65_535:
        return None
    return host.strip("[]"), int(port)


def backoff_delay_ms(failures: int, *, initial_ms: int, max_ms: int, draw: float) -> float:
    """Delay before the next dial after ``failures`` failed ones ("equal jitter").

    The ceiling doubles per failure up to ``max_ms``; the delay is half the
    ceiling plus a uniform share of the other half (``draw`` in [0, 1)), so
    validators that lost each other at once do not redial in lockstep, and
    the delay never collapses to zero.
    """
    ceiling = min(max_ms, initial_ms * (1 << min(failures, 32)))
    return ceiling / 2 + ceiling / 2 * draw


QUARANTINE_FIRST_MS = 1_000
QUARANTINE_MAX_MS = 300_000
QUARANTINE_FORGET_MS = 600_000
"""An offence this long after the last one starts the schedule again at one second."""

QUARANTINE_FAULTS = frozenset({PeerFault.MALFORMED_FRAME, PeerFault.UNKNOWN_FRAME_KIND})
"""Transport faults that quarantine the member when its session is authenticated.
Every validator runs the same protocol version (the handshake refuses others) and
encodes canonically, so only a misbehaving member sends these. Timing-dependent
faults (a late reply, a lost connection) and size limits (which differ if operators
set ``max_frame_bytes`` apart) never quarantine."""


def quarantine_ms(offences: int) -> int:
    """How long a member is refused after its ``offences``-th offence in a row:
    one second, doubling, at most five minutes.

    Why at all: a fault closes the session, but a byzantine member can redial at
    once and send the next frame that costs a decode of up to ``max_frame_bytes``
    (about half a second of CPU for 16 MiB of msgpack). Refusing it for a while
    bounds what its junk costs us to one frame per period."""
    if offences < 1:
        raise ValueError(f"offences must be at least 1, got {offences}")
    return min(QUARANTINE_MAX_MS, QUARANTINE_FIRST_MS << min(offences - 1, 32))
